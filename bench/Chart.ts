/**
 * Writes the benchmark's SVG charts, rendered by vega-lite under Node 22 from bench/node_modules: the drain
 * chart (bench/chart.mjs, bench/drain.svg) and the soak's time series (bench/soak-chart.mjs).
 */
import { benchDirectory, nodeBinary } from "./BenchDependencies.ts"
import type { ChartPoint } from "./Scenario.ts"
import { logDirectory } from "./WorkerProcess.ts"

export const fileName = "drain.svg"

/** Runs the renderer `script` (in bench/) over `data`, writing the SVG to `outFile` (absolute). */
export const renderWith = async (script: string, data: unknown, outFile: string) => {
  const input = `${logDirectory}/${script}.points.json`
  await Bun.write(input, JSON.stringify(data))
  const child = Bun.spawn([nodeBinary, script, input, outFile], {
    cwd: benchDirectory,
    stdout: "inherit",
    stderr: "inherit"
  })
  if ((await child.exited) !== 0) throw new Error(`rendering ${outFile} failed`)
}

export const render = (points: ReadonlyArray<ChartPoint>) =>
  renderWith("chart.mjs", points, `${benchDirectory}${fileName}`)
