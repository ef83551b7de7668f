/**
 * `npm run bench [-- --quick] [-- --only=name,name] [-- --print]`: every benchmark against the local
 * Postgres, in one run, in priority order; writes bench/RESULTS.md and bench/drain.svg. Each scenario uses
 * its own database and drops it afterwards. A scenario that fails is reported as failed; the others still
 * run. `--print` writes the sections to standard output instead, leaving RESULTS.md as it is (to add one
 * section's figures by hand).
 */
import * as BenchDatabase from "./BenchDatabase.ts"
import * as BenchDependencies from "./BenchDependencies.ts"
import * as Chart from "./Chart.ts"
import * as Conditions from "./Conditions.ts"
import * as Machine from "./Machine.ts"
import * as Report from "./Report.ts"
import type { ChartPoint, Context, Section } from "./Scenario.ts"
import * as Depth from "./scenarios/Depth.ts"
import * as Drain from "./scenarios/Drain.ts"
import * as Embedded from "./scenarios/Embedded.ts"
import * as EndToEnd from "./scenarios/EndToEnd.ts"
import * as Enqueue from "./scenarios/Enqueue.ts"
import * as Events from "./scenarios/Events.ts"
import * as Limits from "./scenarios/Limits.ts"
import * as Pgbench from "./scenarios/Pgbench.ts"
import * as Pickup from "./scenarios/Pickup.ts"
import * as Profile from "./scenarios/Profile.ts"
import * as Progress from "./scenarios/Progress.ts"
import * as Prune from "./scenarios/Prune.ts"
import * as Tracing from "./scenarios/Tracing.ts"

const args = process.argv.slice(2)
const quick = args.includes("--quick")
const printOnly = args.includes("--print")
const only = args
  .find((a) => a.startsWith("--only="))
  ?.slice("--only=".length)
  .split(",")

const scenarios: ReadonlyArray<{ readonly name: string; readonly run: (c: Context) => Promise<Section> }> = [
  { name: "drain", run: Drain.run },
  { name: "pgbench", run: Pgbench.run },
  { name: "pickup", run: Pickup.run },
  { name: "enqueue", run: Enqueue.run },
  { name: "depth", run: Depth.run },
  { name: "limits", run: Limits.run },
  { name: "prune", run: Prune.run },
  { name: "progress", run: Progress.run },
  { name: "events", run: Events.run },
  { name: "profile", run: Profile.run },
  { name: "embedded", run: Embedded.run },
  { name: "tracing", run: Tracing.run },
  { name: "e2e", run: EndToEnd.run }
]

const started = new Date()
const t0 = performance.now()
const log = (line: string) => console.log(`[bench ${((performance.now() - t0) / 1000).toFixed(1)}s] ${line}`)

// the drain, enqueue and pickup scenarios run the peers, and only a full report draws the chart
const needsPeers =
  only === undefined ? true : only.some((name) => ["drain", "enqueue", "pickup"].includes(name))
let peersAvailable = needsPeers
try {
  if (needsPeers) await BenchDependencies.ensureInstalled()
} catch (error) {
  peersAvailable = false
  log(`peers and chart unavailable: ${String(error)}`)
}

const admin = BenchDatabase.admin()
const machine = await Machine.describe(admin)
await admin.close()
log(
  `${machine.cores} cores, ${machine.cpuModel}, load ${machine.loadAverage}; ${quick ? "quick" : "full"} mode`
)

const context: Context = { quick, runs: 3, log, peersAvailable }
const sections: Array<Section> = []
for (const scenario of scenarios) {
  if (only !== undefined && !only.includes(scenario.name)) continue
  log(`scenario ${scenario.name}`)
  try {
    sections.push(await scenario.run(context))
  } catch (error) {
    log(`scenario ${scenario.name} failed: ${String(error)}`)
    sections.push({
      title: scenario.name,
      markdown: `**Failed in this run:** ${String(error instanceof Error ? error.message : error)}`
    })
  }
}

if (printOnly) {
  const loadNow = (await Bun.file("/proc/loadavg").text()).split(" ").slice(0, 3).join(" ")
  console.log(`\nload average at start / end: ${machine.loadAverage} / ${loadNow}\n`)
  for (const section of sections) console.log(`## ${section.title}\n\n${section.markdown}\n`)
  process.exit(0)
}

const points: Array<ChartPoint> = sections.flatMap((s) => s.chart ?? [])
let chartWritten = false
if (peersAvailable && points.length > 0) {
  try {
    await Chart.render(points)
    chartWritten = true
  } catch (error) {
    log(`chart not written: ${String(error)}`)
  }
}

const loadAfter = (await Bun.file("/proc/loadavg").text()).split(" ").slice(0, 3).join(" ")
await Report.write({
  quick,
  runs: context.runs,
  startedAt: started,
  elapsedSeconds: (performance.now() - t0) / 1000,
  machine,
  loadAfter,
  sections,
  chartWritten,
  preface: Conditions.preface(quick),
  closing: Conditions.closing
})
log(`wrote bench/RESULTS.md${chartWritten ? ` and bench/${Chart.fileName}` : ""}`)
