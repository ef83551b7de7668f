/** Writes bench/drain.svg from the drain points, rendered by vega-lite under Node 22 (bench/chart.mjs). */
import { benchDirectory, nodeBinary } from "./BenchDependencies.ts"
import type { ChartPoint } from "./Scenario.ts"
import { logDirectory } from "./WorkerProcess.ts"

export const fileName = "drain.svg"

export const render = async (points: ReadonlyArray<ChartPoint>) => {
  const input = `${logDirectory}/chart-points.json`
  await Bun.write(input, JSON.stringify(points))
  const child = Bun.spawn([nodeBinary, "chart.mjs", input, `${benchDirectory}${fileName}`], {
    cwd: benchDirectory,
    stdout: "inherit",
    stderr: "inherit"
  })
  if ((await child.exited) !== 0) throw new Error("rendering the chart failed")
}
