import { afterAll, describe, expect, it } from "bun:test"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { Queue } from "../src/queue/Queue.ts"
import { kinds } from "./fixtures/recordingKinds.ts"
import { exited, spawnWorker, started, type WorkerProcess } from "./support/processes.ts"
import { setupQueueTests, waitFor } from "./support/runtime.ts"

// first: hooks run in order, and one that throws (the database drop, on a saturated server) skips the rest
const workers: Array<WorkerProcess> = []
afterAll(() => {
  for (const w of workers) w.process.kill("SIGKILL")
})
const { db, run } = await setupQueueTests(import.meta.file, kinds)
await run(
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.andThen(
      sql`CREATE TABLE processed_log (job_id uuid NOT NULL, worker text NOT NULL)`,
      sql`CREATE TABLE started_log (job_id uuid NOT NULL)`
    )
  )
)
const spawn = (id: string, env: Record<string, string> = {}) => {
  const worker = spawnWorker(db.url, id, env)
  workers.push(worker)
  return worker
}

const enqueueRecords = (
  queue: string,
  count: number,
  sleepMs: number,
  announce = false,
  maxAttempts?: number
) =>
  run(
    Queue.use((q) =>
      q.enqueueMany(
        Array.from({ length: count }, () => ({
          kind: "record",
          payload: { sleepMs, announce },
          queue,
          ...(maxAttempts === undefined ? {} : { maxAttempts })
        }))
      )
    )
  ).then((jobs) => jobs.map((j) => j.job.id as string))

const sql = <A extends object>(f: (sql: SqlClient.SqlClient) => Effect.Effect<ReadonlyArray<A>, unknown>) =>
  run(Effect.flatMap(SqlClient.SqlClient, f) as Effect.Effect<ReadonlyArray<A>, never>)

const statusCounts = async (queue: string) =>
  Object.fromEntries(
    (
      await sql<{ status: string; n: number }>(
        (s) => s`SELECT status, count(*)::int AS n FROM jobs WHERE queue = ${queue} GROUP BY status`
      )
    ).map((r) => [r.status, r.n])
  )

/** Waits until the job's handler has started and its worker has recorded that (its attempt now counts). */
const startRecorded = (id: string) =>
  waitFor(`job ${id} to have started, as recorded by its worker`, async () => {
    const rows = await sql<{ n: number }>(
      (s) => s`SELECT count(*)::int AS n FROM started_log l JOIN jobs j ON j.id = l.job_id
               WHERE l.job_id = ${id} AND j.status = 'running' AND j.attempt_started`
    )
    return rows[0]!.n === 1 ? true : undefined
  })

const executions = (ids: ReadonlyArray<string>) =>
  sql<{ jobId: string; n: number }>(
    (s) =>
      s`SELECT job_id AS "jobId", count(*)::int AS n FROM processed_log WHERE job_id = ANY(${ids}::uuid[]) GROUP BY job_id`
  )

describe("worker processes", () => {
  it("200 jobs across 8 fibers in each of 2 worker processes are each processed exactly once", async () => {
    const queue = "two-processes"
    // no prefetch: each holds at most its 8, so one process cannot take the whole backlog in one claim
    const settings = { WORKER_CONCURRENCY: "8", WORKER_PREFETCH: "0", WORKER_QUEUES: queue }
    const a = spawn("pair-a", settings)
    const b = spawn("pair-b", settings)
    await Promise.all([started(a), started(b)])
    const ids = await enqueueRecords(queue, 200, 5)
    await waitFor(
      "all 200 jobs to succeed",
      async () => ((await statusCounts(queue)).succeeded === 200 ? true : undefined),
      {
        timeoutMs: 30_000
      }
    )
    const counts = await executions(ids)
    expect(counts.length).toBe(200)
    expect(counts.filter((c) => c.n !== 1)).toEqual([])
    const byWorker = await sql<{ worker: string; n: number }>(
      (s) =>
        s`SELECT worker, count(*)::int AS n FROM processed_log WHERE job_id = ANY(${ids}::uuid[]) GROUP BY worker`
    )
    expect(byWorker.map((w) => w.worker).sort()).toEqual(["pair-a", "pair-b"])
    a.process.kill("SIGTERM")
    b.process.kill("SIGTERM")
    await Promise.all([exited(a), exited(b)])
  })

  it("a job whose worker was killed with SIGKILL mid-run is finished by another worker after the lease expires", async () => {
    const queue = "crash"
    const doomed = spawn("doomed", {
      WORKER_QUEUES: queue,
      WORKER_LEASE: "1 second",
      WORKER_LEASE_RENEW: "200 millis"
    })
    const [id] = await enqueueRecords(queue, 1, 2000, true)
    await startRecorded(id!)
    doomed.process.kill("SIGKILL")
    await exited(doomed)
    spawn("rescuer", { WORKER_QUEUES: queue, WORKER_RESCUE_INTERVAL: "200 millis" })
    const done = await waitFor(
      "the rescued job to succeed",
      async () => {
        const job = await run(Queue.use((q) => q.get(id!)))
        return job.status === "succeeded" ? job : undefined
      },
      { timeoutMs: 20_000 }
    )
    expect(done.attempts).toBe(2)
    expect(done.errors[0]!.error).toContain("lease expired: worker doomed")
    expect(await executions([id!])).toEqual([{ jobId: id!, n: 1 }])
  })

  it("SIGKILL of a worker holding buffered jobs refunds their attempts; the one it was running spends its own", async () => {
    const queue = "killed-buffer"
    const doomed = spawn("buffer-doomed", {
      WORKER_QUEUES: queue,
      WORKER_CONCURRENCY: "1",
      WORKER_PREFETCH: "3",
      WORKER_LEASE: "1 second",
      WORKER_LEASE_RENEW: "200 millis"
    })
    await started(doomed)
    // one attempt each: a spent attempt ends the job failed_permanent
    const [long] = await enqueueRecords(queue, 1, 60_000, true, 1)
    await startRecorded(long!)
    const buffered = await enqueueRecords(queue, 3, 10, true, 1)
    // claimed into the buffer, and a lease renewal came since (it must not record them as started)
    await waitFor("the buffered jobs to be held and renewed", async () => {
      const rows = await sql<{ n: number }>(
        (
          s
        ) => s`SELECT count(*)::int AS n FROM jobs WHERE id = ANY(${buffered}::uuid[]) AND status = 'running'
                 AND lease_owner = 'buffer-doomed' AND lease_expires_at > started_at + interval '1100 milliseconds'`
      )
      return rows[0]!.n === 3 ? true : undefined
    })
    doomed.process.kill("SIGKILL")
    await exited(doomed)
    spawn("buffer-rescuer", { WORKER_QUEUES: queue, WORKER_RESCUE_INTERVAL: "200 millis" })
    const jobs = await waitFor(
      "the buffered jobs to succeed and the killed one to end",
      async () => {
        const all = await Promise.all([long!, ...buffered].map((id) => run(Queue.use((q) => q.get(id)))))
        return all.every((j) => j.status === "succeeded" || j.status === "failed_permanent") ? all : undefined
      },
      { timeoutMs: 20_000 }
    )
    const [killed, ...rest] = jobs
    expect([killed!.status, killed!.attempts]).toEqual(["failed_permanent", 1])
    expect(killed!.lastError).toContain("lease expired: worker buffer-doomed")
    expect(rest.map((j) => [j.status, j.attempts, j.errors.map((e) => e.error)])).toEqual(
      Array(3).fill([
        "succeeded",
        1,
        [
          "lease expired: worker buffer-doomed stopped renewing it before recording that the job started; attempt not counted"
        ]
      ])
    )
    expect((await executions(buffered)).map((e) => e.n)).toEqual([1, 1, 1])
  })

  it("SIGTERM lets short jobs finish, releases the rest without spending an attempt, leaves nothing running", async () => {
    const queue = "drain"
    const worker = spawn("drained", { WORKER_QUEUES: queue, WORKER_SHUTDOWN_GRACE: "1 second" })
    const short = await enqueueRecords(queue, 2, 300, true)
    const long = await enqueueRecords(queue, 2, 60_000, true)
    // claimed is not started (a worker may hold claimed jobs in its buffer): wait for the handlers
    await waitFor("all four handlers to start", async () => {
      const rows = await sql<{ n: number }>(
        (s) =>
          s`SELECT count(*)::int AS n FROM started_log WHERE job_id = ANY(${[...short, ...long]}::uuid[])`
      )
      return rows[0]!.n === 4 ? true : undefined
    })
    worker.process.kill("SIGTERM")
    await exited(worker)
    const jobs = await Promise.all([...short, ...long].map((id) => run(Queue.use((q) => q.get(id)))))
    expect(jobs.slice(0, 2).map((j) => j.status)).toEqual(["succeeded", "succeeded"])
    expect(jobs.slice(2).map((j) => [j.status, j.attempts, j.leaseOwner])).toEqual([
      ["queued", 0, null],
      ["queued", 0, null]
    ])
    expect((await statusCounts(queue)).running).toBeUndefined()
  })
})
