import { afterAll, describe, expect, it } from "bun:test"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { Queue } from "../src/queue/Queue.ts"
import { kinds } from "./fixtures/recordingKinds.ts"
import { exited, spawnWorker, started, type WorkerProcess } from "./support/processes.ts"
import { setupQueueTests, waitFor } from "./support/runtime.ts"

const { db, run } = await setupQueueTests(import.meta.file, kinds)
await run(
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.andThen(
      sql`CREATE TABLE processed_log (job_id uuid NOT NULL, worker text NOT NULL)`,
      sql`CREATE TABLE started_log (job_id uuid NOT NULL)`
    )
  )
)
const workers: Array<WorkerProcess> = []
afterAll(() => {
  for (const w of workers) w.process.kill("SIGKILL")
})
const spawn = (id: string, env: Record<string, string> = {}) => {
  const worker = spawnWorker(db.url, id, env)
  workers.push(worker)
  return worker
}

const enqueueRecords = (queue: string, count: number, sleepMs: number, announce = false) =>
  run(
    Queue.use((q) =>
      q.enqueueMany(
        Array.from({ length: count }, () => ({ kind: "record", payload: { sleepMs, announce }, queue }))
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
    const [id] = await enqueueRecords(queue, 1, 2000)
    await waitFor("the doomed worker to hold the job", async () => {
      const job = await run(Queue.use((q) => q.get(id!)))
      return job.status === "running" && job.leaseOwner === "doomed" ? job : undefined
    })
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
