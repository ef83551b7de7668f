import { afterAll, describe, expect, it } from "bun:test"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { Queue } from "../src/queue/Queue.ts"
import { kinds, recordLogTables } from "./fixtures/recordingKinds.ts"
import { jobEventsDdl } from "./support/jobEvents.ts"
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
    Effect.forEach(
      [...recordLogTables, ...jobEventsDdl(["claimed"])],
      (statement) => sql.unsafe(statement).raw
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

  it("a job whose worker was killed with SIGKILL mid-run is rescued within a lease, a maintainer takeover and a rescue interval, and finished by the other worker", async () => {
    const queue = "crash"
    const leaseMs = 1000
    const rescueIntervalMs = 200
    // the killed worker may be the elected maintainer: then the other takes over within the leader lease
    // and a third of it (while the job's lease runs out too), and rescues at its next pass
    const leaderLeaseMs = 1000
    const settings = {
      WORKER_QUEUES: queue,
      WORKER_LEASE: `${leaseMs} millis`,
      WORKER_LEASE_RENEW: "200 millis",
      WORKER_RESCUE_INTERVAL: `${rescueIntervalMs} millis`,
      WORKER_LEADER_LEASE: `${leaderLeaseMs} millis`
    }
    // both ready before the job exists: whichever claims it is killed, the other rescues and finishes it
    const pair = [spawn("crash-a", settings), spawn("crash-b", settings)]
    await Promise.all(pair.map((w) => started(w)))
    const [id] = await enqueueRecords(queue, 1, 1000, true)
    // its worker ran it and recorded the start (so the crashed attempt counts)
    await startRecorded(id!)
    const held = await run(Queue.use((q) => q.get(id!)))
    const doomed = pair.find((w) => w.id === held.leaseOwner)!
    const survivor = pair.find((w) => w !== doomed)!
    const killedAt = Date.now()
    doomed.process.kill("SIGKILL")
    await exited(doomed)
    const rescued = await waitFor("the job to be rescued", async () => {
      const job = await run(Queue.use((q) => q.get(id!)))
      return job.errors.length > 0 ? job : undefined
    })
    expect(rescued.errors[0]!.error).toContain(`lease expired: worker ${doomed.id}`)
    // the last renewal came at most one renewal interval before the kill; the lease then ran out (and, if the
    // killed worker was the maintainer, its leader lease too, noticed within a third of it), and the next
    // rescue pass took it. Allowance for a loaded machine: 800 ms.
    const rescueMs = Date.parse(rescued.errors[0]!.at) - killedAt
    expect(rescueMs).toBeGreaterThan(leaseMs - 200 - 100)
    expect(rescueMs).toBeLessThan(Math.max(leaseMs, leaderLeaseMs * (4 / 3)) + rescueIntervalMs + 800)
    const done = await waitFor(
      "the rescued job to succeed",
      async () => {
        const job = await run(Queue.use((q) => q.get(id!)))
        return job.status === "succeeded" ? job : undefined
      },
      { timeoutMs: 15_000 }
    )
    expect(done.attempts).toBe(2)
    expect(await executions([id!])).toEqual([{ jobId: id!, n: 1 }])
    const byWorker = await sql<{ worker: string }>(
      (s) => s`SELECT worker FROM processed_log WHERE job_id = ${id!}`
    )
    expect(byWorker).toEqual([{ worker: survivor.id }])
    survivor.process.kill("SIGTERM")
    await exited(survivor)
  })

  it("SIGKILL of a worker holding buffered jobs refunds their attempts; the one it was running spends its own", async () => {
    const queue = "killed-buffer"
    const doomed = spawn("buffer-doomed", {
      WORKER_QUEUES: queue,
      WORKER_CONCURRENCY: "1",
      WORKER_PREFETCH: "3",
      WORKER_LEASE: "1 second",
      WORKER_LEASE_RENEW: "200 millis",
      // it is the elected maintainer, most likely: the rescuer takes over within a second and a third
      WORKER_LEADER_LEASE: "1 second"
    })
    await started(doomed)
    // one attempt each: a spent attempt ends the job failed_permanent
    const [long] = await enqueueRecords(queue, 1, 60_000, true, 1)
    await startRecorded(long!)
    const buffered = await enqueueRecords(queue, 3, 10, true, 1)
    // claimed into the buffer, and looked at since (a look must not record them as started): the worker's
    // row was extended a second after their claim, and its looks come as often as its heartbeats (200 ms)
    await waitFor("the buffered jobs to be held and looked at", async () => {
      const rows = await sql<{ n: number }>(
        (s) => s`SELECT count(*)::int AS n FROM jobs j JOIN workers w ON w.id = j.lease_owner
                 WHERE j.id = ANY(${buffered}::uuid[]) AND j.status = 'running' AND j.lease_owner = 'buffer-doomed'
                   AND w.heartbeat_at > j.started_at + interval '1000 milliseconds'`
      )
      return rows[0]!.n === 3 ? true : undefined
    })
    doomed.process.kill("SIGKILL")
    await exited(doomed)
    spawn("buffer-rescuer", {
      WORKER_QUEUES: queue,
      WORKER_RESCUE_INTERVAL: "200 millis",
      WORKER_LEADER_LEASE: "1 second"
    })
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
  it("after SIGTERM the worker claims nothing more, while it still runs its jobs through the grace period", async () => {
    const queue = "stop-claiming"
    const worker = spawn("stopping", {
      WORKER_QUEUES: queue,
      WORKER_CONCURRENCY: "4",
      WORKER_PREFETCH: "0",
      WORKER_POLL_INTERVAL: "100 millis",
      WORKER_SHUTDOWN_GRACE: "1 second"
    })
    await started(worker)
    const [long] = await enqueueRecords(queue, 1, 60_000, true)
    await waitFor("the long job's handler to start", async () => {
      const rows = await sql<{ n: number }>(
        (s) => s`SELECT count(*)::int AS n FROM started_log WHERE job_id = ${long!}`
      )
      return rows[0]!.n === 1 ? true : undefined
    })
    worker.process.kill("SIGTERM")
    await waitFor("the worker to begin its shutdown", async () =>
      (await Bun.file(worker.logFile).text()).includes("shutting down: waiting up to") ? true : undefined
    )
    // three free slots, a poll every 100 ms and a notification for each: a worker still claiming takes them
    const late = await enqueueRecords(queue, 3, 1)
    expect(await exited(worker)).toBe(130)
    const claims = await sql<{ jobId: string; worker: string }>(
      (s) =>
        s`SELECT job_id::text AS "jobId", worker FROM job_events WHERE event = 'claimed' AND job_id = ANY(${[long!, ...late]}::uuid[])`
    )
    expect(claims).toEqual([{ jobId: long!, worker: "stopping" }])
    // the worker was alive after the late jobs arrived: it released the long job when the grace ran out
    const jobs = await Promise.all([long!, ...late].map((id) => run(Queue.use((q) => q.get(id)))))
    expect(jobs.map((j) => [j.status, j.attempts])).toEqual([
      ["queued", 0],
      ["queued", 0],
      ["queued", 0],
      ["queued", 0]
    ])
    const [releasedAfter] = await sql<{ late: boolean }>(
      (s) => s`SELECT (SELECT updated_at FROM jobs WHERE id = ${long!}) > max(created_at) AS late
               FROM jobs WHERE id = ANY(${late}::uuid[])`
    )
    expect(releasedAfter!.late).toBe(true)
  })
  it("refuses to start without DATABASE_URL: a non-zero exit and a message that names it", async () => {
    const { DATABASE_URL: _, ...withoutUrl } = process.env
    // --no-env-file: a developer's .env (from .env.example) must not hand it one
    const child = Bun.spawn([process.execPath, "--no-env-file", "src/worker.ts"], {
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      env: { ...withoutUrl, WORKER_METRICS_PORT: "0" },
      stdout: "pipe",
      stderr: "pipe"
    })
    const worker = { id: "no-url", process: child, logFile: "" }
    workers.push(worker)
    const code = await exited(worker)
    const output = `${await new Response(child.stdout).text()}${await new Response(child.stderr).text()}`
    expect(code).not.toBe(0)
    expect(output).toContain("DATABASE_URL")
  })
})
