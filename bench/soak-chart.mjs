// Renders the soak's time series as SVG, headless, with vega-lite + vega (bench/node_modules): throughput,
// pickup latency and the jobs table's size, one panel each, over the minutes of the run.
// Usage: node soak-chart.mjs <input.json> <out.svg>; input is { title, samples: [{ minute, ... }] }.
import { readFile, writeFile } from "node:fs/promises"
import * as vega from "vega"
import * as vegaLite from "vega-lite"

const [inputFile, outFile] = process.argv.slice(2)
const { title, samples } = JSON.parse(await readFile(inputFile, "utf8"))

const panel = (heading, yTitle, fields, scale = {}) => ({
  title: { text: heading, anchor: "start", fontSize: 12 },
  width: 560,
  height: 150,
  transform: [
    { fold: Object.keys(fields), as: ["field", "value"] },
    { calculate: `${JSON.stringify(fields)}[datum.field]`, as: "series" },
    // a log scale has no zero (and a window without completions has no percentile)
    ...(scale.type === "log" ? [{ filter: "isValid(datum.value) && datum.value > 0" }] : [])
  ],
  mark: { type: "line", point: { size: 12 } },
  encoding: {
    x: { field: "minute", type: "quantitative", title: "minutes into the soak" },
    y: { field: "value", type: "quantitative", title: yTitle, scale },
    color: { field: "series", type: "nominal", title: null, legend: { orient: "right", labelLimit: 200 } }
  }
})

const spec = {
  $schema: "https://vega.github.io/schema/vega-lite/v6.json",
  title,
  data: { values: samples },
  vconcat: [
    panel("Throughput (10 s windows)", "jobs/s", {
      completedPerSecond: "completed",
      enqueuedPerSecond: "enqueued"
    }),
    panel(
      "Latency from enqueue, jobs finished in the window (pickup: to the claim)",
      "ms (log scale)",
      { pickupP50Ms: "pickup p50", pickupP99Ms: "pickup p99", endToEndP99Ms: "completion p99" },
      { type: "log" }
    ),
    panel("Size of the jobs table", "MB", {
      totalMB: "table + indexes",
      heapMB: "table",
      indexesMB: "indexes"
    })
  ],
  resolve: { scale: { color: "independent" } }
}

const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: "none" })
// a static picture with a title, as the repository's linter asks of an SVG (see chart.mjs)
const svg = (await view.toSVG())
  .replace(/ (role|aria-roledescription|aria-label|tabindex)="[^"]*"/g, "")
  .replace(/^(<svg[^>]*>)/, `$1<title>${title.replace(/[<&]/g, "")}</title>`)
await writeFile(outFile, svg)
