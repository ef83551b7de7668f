/**
 * What flows cost jobs outside flows: one drain of 20,000 no-op jobs (one worker process, concurrency 8,
 * as `npm run bench`'s drain), kept and with JOB_RETENTION=0, run from the checkout it lives in. Run it in
 * two checkouts one after the other (before and after the flows migration) and compare:
 *
 *   bun bench/flows-overhead.ts [runs]
 *
 * Prints one JSON line per run: { retention, jobsPerSecond }.
 */
import * as BenchDatabase from "./BenchDatabase.ts"
import * as OurDrain from "./scenarios/OurDrain.ts"

const runs = Number(process.argv[2] ?? 3)
for (let i = 0; i < runs; i++) {
  for (const deleteSucceeded of [false, true]) {
    const result = await BenchDatabase.using("flows-overhead", (db) =>
      OurDrain.run(db, { backlog: 20_000, concurrency: 8, processes: 1, deleteSucceeded }, "flows-overhead")
    )
    console.log(
      JSON.stringify({
        retention: deleteSucceeded ? 0 : "kept",
        jobsPerSecond: Math.round(result.jobsPerSecond)
      })
    )
  }
}
process.exit(0)
