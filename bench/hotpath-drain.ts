/**
 * One drain of 20,000 no-op jobs by one worker process (the drain scenario's harness,
 * bench/scenarios/OurDrain.ts), results kept, from the checkout it runs in: run it alternately from two
 * checkouts to pair them (bench/RESULTS.md, "Hot path statements (issue #21)").
 *
 *   CONCURRENCY=8 PREFETCH=32 bun bench/hotpath-drain.ts
 *
 * JOB_RETENTION=0 drains deleting; BACKLOG sets the number of jobs (default 20,000; 200,000 shows the steady state
 * past the JIT's warm-up); PROCESSES runs that many worker processes, each at CONCURRENCY (default 1). Prints
 * one JSON line: { concurrency, prefetch, deleting, jobsPerSecond, postgresUsPerJob, workerUsPerJob } (CPU of
 * the database's backends and of the worker processes over the drain).
 */
import * as BenchDatabase from "./BenchDatabase.ts"
import * as OurDrain from "./scenarios/OurDrain.ts"

const concurrency = Number(process.env.CONCURRENCY ?? 8)
const prefetch = process.env.PREFETCH ?? "32"
const backlog = Number(process.env.BACKLOG ?? 20_000)
const deleting = process.env.JOB_RETENTION === "0"
const admin = BenchDatabase.admin()
const result = await BenchDatabase.using("hotpath_drain", (db) =>
  OurDrain.run(
    db,
    {
      backlog,
      concurrency,
      processes: Number(process.env.PROCESSES ?? 1),
      env: { WORKER_PREFETCH: prefetch },
      deleteSucceeded: deleting,
      cpuFrom: admin
    },
    "hotpath-drain"
  )
)
await admin.close()
const perJob = (seconds: number | undefined) =>
  seconds === undefined ? undefined : Number(((seconds * 1e6) / backlog).toFixed(1))
console.log(
  JSON.stringify({
    concurrency,
    prefetch,
    deleting,
    jobsPerSecond: Math.round(result.jobsPerSecond),
    postgresUsPerJob: perJob(result.postgresCpuSeconds),
    workerUsPerJob: perJob(result.workerCpuSeconds)
  })
)
process.exit(0)
