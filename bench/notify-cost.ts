/**
 * `bun run bench/notify-cost.ts`: what the `jobq_finished` triggers (migrations/0005) cost the drain. The
 * drain scenario's own runs in quick mode (backlog 3,000; concurrency 1, 8, 32; one worker process; with and
 * without JOB_RETENTION=0), each run twice on the same database, once with the triggers and once with them
 * disabled, in alternating order; prints the median of the paired ratios (with / without) per level.
 * RUNS, BACKLOG and RETENTION (below) change the runs.
 */
import * as BenchDatabase from "./BenchDatabase.ts"
import { summarize } from "./Stats.ts"
import { backlogSize, concurrencies } from "./scenarios/Drain.ts"
import * as OurDrain from "./scenarios/OurDrain.ts"

const runs = Number(process.env.RUNS ?? 3)
/** BACKLOG=20000 for the full mode's backlog (quick mode's 3,000 drain in a fraction of a second) */
const backlog = Number(process.env.BACKLOG ?? backlogSize(true))
/** RETENTION=kept or RETENTION=0 for one of the two */
const retention = process.env.RETENTION
const triggers = ["jobs_notify_finished_update", "jobs_notify_finished_delete"]

await BenchDatabase.using("notify_cost", async (db) => {
  const setTriggers = (on: boolean) =>
    db.sql.unsafe(
      triggers.map((t) => `ALTER TABLE jobs ${on ? "ENABLE" : "DISABLE"} TRIGGER ${t};`).join("\n")
    )
  const lines: Array<string> = []
  for (const deleteSucceeded of [false, true]) {
    if (retention !== undefined && (retention === "0") !== deleteSucceeded) continue
    for (const concurrency of concurrencies(true)) {
      const ratios: Array<number> = []
      const withTriggers: Array<number> = []
      const without: Array<number> = []
      for (let i = 0; i < runs; i++) {
        const order = i % 2 === 0 ? [true, false] : [false, true]
        const result = new Map<boolean, number>()
        for (const on of order) {
          await setTriggers(on)
          const run = await OurDrain.run(
            db,
            { backlog, concurrency, processes: 1, deleteSucceeded },
            `notify-${on ? "on" : "off"}-c${concurrency}-${i}`
          )
          result.set(on, run.jobsPerSecond)
        }
        withTriggers.push(result.get(true)!)
        without.push(result.get(false)!)
        ratios.push(result.get(true)! / result.get(false)!)
        console.log(
          `retention0=${deleteSucceeded} c=${concurrency} run ${i + 1}: with ${result.get(true)!.toFixed(0)} jobs/s, without ${result.get(false)!.toFixed(0)} jobs/s`
        )
      }
      const r = summarize(ratios)
      const line = `| ${deleteSucceeded ? "JOB_RETENTION=0" : "kept"} | ${concurrency} | ${summarize(withTriggers).median.toFixed(0)} | ${summarize(without).median.toFixed(0)} | ${r.median.toFixed(2)} (${r.min.toFixed(2)}-${r.max.toFixed(2)}) |`
      lines.push(line)
      console.log(line)
    }
  }
  await setTriggers(true)
  console.log(
    [
      "| succeeded jobs | concurrency | with (jobs/s) | without (jobs/s) | ratio, median (range) |",
      "|---|---|---|---|---|",
      ...lines
    ].join("\n")
  )
})
