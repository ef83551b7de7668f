/**
 * One drain of 20,000 no-op jobs by one worker process (the drain scenario's harness,
 * bench/scenarios/OurDrain.ts), results kept, from the checkout it runs in: run it alternately from two
 * checkouts to pair them (bench/RESULTS.md, "Hot path statements (issue #21)").
 *
 *   CONCURRENCY=8 PREFETCH=32 bun bench/hotpath-drain.ts
 *
 * Prints one JSON line: { concurrency, prefetch, jobsPerSecond }.
 */
import * as BenchDatabase from "./BenchDatabase.ts"
import * as OurDrain from "./scenarios/OurDrain.ts"

const concurrency = Number(process.env.CONCURRENCY ?? 8)
const prefetch = process.env.PREFETCH ?? "32"
const result = await BenchDatabase.using("hotpath_drain", (db) =>
  OurDrain.run(
    db,
    { backlog: 20_000, concurrency, processes: 1, env: { WORKER_PREFETCH: prefetch } },
    "hotpath-drain"
  )
)
console.log(JSON.stringify({ concurrency, prefetch, jobsPerSecond: Math.round(result.jobsPerSecond) }))
process.exit(0)
