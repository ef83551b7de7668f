/**
 * `bun run bench/notify-cost-pgbench.ts`: what the `jobq_finished` triggers (migrations/0005) cost the
 * database alone: pgbench running bench/pgbench/claim-complete.sql (insert a batch, claim it, complete it),
 * batch 1 and 100, 8 clients, 5 s runs, each run twice on the same database (triggers on, then disabled, in
 * alternating order); prints the median of the paired ratios (with / without). RUNS changes the runs.
 */
import * as Backlog from "./Backlog.ts"
import * as BenchDatabase from "./BenchDatabase.ts"
import { summarize } from "./Stats.ts"
import { pgbench } from "./scenarios/Pgbench.ts"

const runs = Number(process.env.RUNS ?? 4)
const binary = process.env.PGBENCH ?? "pgbench"
const triggers = ["jobs_notify_finished_update", "jobs_notify_finished_delete"]

await BenchDatabase.using("notify_cost_pgbench", async (db) => {
  const setTriggers = (on: boolean) =>
    db.sql.unsafe(
      triggers.map((t) => `ALTER TABLE jobs ${on ? "ENABLE" : "DISABLE"} TRIGGER ${t};`).join("\n")
    )
  const lines: Array<string> = []
  for (const batch of [1, 100]) {
    const ratios: Array<number> = []
    const rates = new Map<boolean, Array<number>>([
      [true, []],
      [false, []]
    ])
    for (let i = 0; i < runs; i++) {
      const result = new Map<boolean, number>()
      for (const on of i % 2 === 0 ? [true, false] : [false, true]) {
        await setTriggers(on)
        await Backlog.reset(db.sql)
        await Backlog.fill(db.sql, 20_000)
        await Backlog.analyze(db.sql)
        const r = await pgbench(binary, db.url, "claim-complete.sql", {
          clients: 8,
          seconds: 5,
          variables: { batch: String(batch) }
        })
        result.set(on, r.tps * batch)
        rates.get(on)!.push(r.tps * batch)
      }
      ratios.push(result.get(true)! / result.get(false)!)
      console.log(
        `batch ${batch} run ${i + 1}: with ${result.get(true)!.toFixed(0)} jobs/s, without ${result.get(false)!.toFixed(0)} jobs/s`
      )
    }
    const r = summarize(ratios)
    lines.push(
      `| ${batch} | ${summarize(rates.get(true)!).median.toFixed(0)} | ${summarize(rates.get(false)!).median.toFixed(0)} | ${r.median.toFixed(2)} (${r.min.toFixed(2)}-${r.max.toFixed(2)}) |`
    )
  }
  await setTriggers(true)
  console.log(
    [
      "| batch | with (jobs/s) | without (jobs/s) | ratio, median (range) |",
      "|---|---|---|---|",
      ...lines
    ].join("\n")
  )
})
