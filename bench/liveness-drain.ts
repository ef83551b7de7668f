/**
 * Did liveness per worker (issue #21) slow the drain? One worker process drains 20,000 no-op jobs (as in
 * bench/scenarios/OurDrain.ts, default settings), the worker of another checkout (LIVENESS_BEFORE, e.g. the
 * commit before the change, exported with `git archive` and its node_modules linked) and this one's taken in
 * turn, alternating which goes first, on a database migrated by this checkout (the older worker runs on the
 * newer schema, as in a rolling upgrade). Run: `LIVENESS_BEFORE=/tmp/lv-before bun bench/liveness-drain.ts`
 * (LIVENESS_ROUNDS, default 4; LIVENESS_CONCURRENCY, default 8).
 */
import * as BenchDatabase from "./BenchDatabase.ts"
import * as OurDrain from "./scenarios/OurDrain.ts"

const before = process.env.LIVENESS_BEFORE
if (before === undefined) throw new Error("LIVENESS_BEFORE: the other checkout's directory")
const rounds = Number(process.env.LIVENESS_ROUNDS ?? 4)
const concurrency = Number(process.env.LIVENESS_CONCURRENCY ?? 8)
const sides = {
  before: { JOBQ_BENCH_ROOT: before, JOBS_MODULE: `${before}/bench/BenchKinds.ts` },
  after: {}
} as const
await BenchDatabase.using("livedrain", async (db) => {
  const results: Record<string, Array<number>> = { before: [], after: [] }
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? (["before", "after"] as const) : (["after", "before"] as const)
    for (const side of order) {
      const { jobsPerSecond } = await OurDrain.run(
        db,
        { backlog: 20_000, concurrency, processes: 1, env: sides[side] },
        `livedrain-${side}-${round}`
      )
      results[side]!.push(Math.round(jobsPerSecond))
      console.log(JSON.stringify({ round, side, jobsPerSecond: Math.round(jobsPerSecond) }))
    }
  }
  const ratios = results.after!.map((a, i) => a / results.before![i]!)
  const sorted = [...ratios].sort((a, b) => a - b)
  const median =
    (sorted[Math.floor((sorted.length - 1) / 2)]! + sorted[Math.ceil((sorted.length - 1) / 2)]!) / 2
  console.log(
    JSON.stringify({
      concurrency,
      results,
      afterOverBefore: ratios.map((r) => r.toFixed(2)).join(", "),
      median: median.toFixed(2)
    })
  )
})
