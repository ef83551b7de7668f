/**
 * Scenario 6, queue depth: does the claim slow down as the table grows? Our worker (one process,
 * concurrency 32) drains with a small backlog, with a large backlog (timing its first completions only),
 * and with a small backlog after many completed jobs were left in the table. Every table is analyzed
 * before timing.
 */
import * as BenchDatabase from "../BenchDatabase.ts"
import { decimal, integer, medianRange, table } from "../Markdown.ts"
import type { Context, Section } from "../Scenario.ts"
import { summarize } from "../Stats.ts"
import * as OurDrain from "./OurDrain.ts"

export const run = async (context: Context): Promise<Section> => {
  const small = context.quick ? 5_000 : 10_000
  const large = context.quick ? 100_000 : 1_000_000
  const measure = small
  const concurrency = 32
  const cases = [
    { name: `${integer(small)}-job backlog`, options: { backlog: small } },
    {
      name: `${integer(large)}-job backlog (first ${integer(measure)} completions timed)`,
      options: { backlog: large, measure }
    },
    {
      name: `${integer(small)}-job backlog after ${integer(large)} completed jobs left in the table`,
      options: { backlog: small, finishedRows: large }
    }
  ]
  const results = cases.map(() => [] as Array<number>)
  await BenchDatabase.using("depth", async (db) => {
    for (let r = 0; r < context.runs; r++) {
      for (const [i, c] of cases.entries()) {
        const value = (
          await OurDrain.run(
            db,
            { concurrency, processes: 1, timeoutMs: 600_000, ...c.options },
            `depth-${i}-${r}`
          )
        ).jobsPerSecond
        results[i]!.push(value)
        context.log(`depth ${c.name} run ${r + 1}: ${integer(value)} jobs/s`)
      }
    }
  })
  const base = summarize(results[0]!).median
  const rows = cases.map((c, i) => {
    const s = summarize(results[i]!)
    return [c.name, medianRange(s), `${decimal((s.median / base) * 100, 0)}%`]
  })
  const largeShare = summarize(results[1]!).median / base
  const markdown = [
    `Our worker, one process, concurrency ${concurrency}; ${context.runs} runs each, median (min – max). The harness learns that the timed completions are done by counting the unfinished jobs through their partial indexes, and waits at least 20 times as long as each count took before the next: until 2026-11-28 it counted the succeeded jobs instead, a parallel scan of every finished row, which took both cores from the drain it was waiting on (the table with a million finished jobs measured 37-52% then). With a million ready jobs the timed window (about a second) can still hold counts of all of them: the harness's, and the worker's own queue-depth sample (about 0.26 s of database time per million ready jobs, taken at a random moment of each 15-second interval).${context.quick ? ` Quick mode: ${integer(large)} rows instead of 1,000,000 and ${integer(small)} instead of 10,000.` : ""}`,
    "",
    table(["table state", "jobs/s", "vs small backlog"], rows),
    "",
    `Target: the large backlog within 20% of the small one: **${Math.abs(1 - largeShare) <= 0.2 ? "met" : "missed"}** (${decimal(largeShare * 100, 0)}%).`
  ].join("\n")
  return { title: "Queue depth", markdown }
}
