/**
 * Liveness per worker (migration 0013): a worker's claimed jobs hold no lease of their own, its row in
 * `workers` holds them, and only its heartbeat writes while they run. Checked from the database's own record:
 * worker processes killed (SIGKILL) or frozen (SIGSTOP) have their jobs rescued once their row's lease ran
 * out, and not before; a stalled worker's late settlement matches nothing; a worker whose lease ran out does
 * not get its old jobs back by heartbeating again; and jobs held under per-job leases by workers from before
 * the migration keep those leases (the upgrade).
 */
import { describe, expect, it } from "bun:test"
import { cpSync, mkdtempSync, readdirSync } from "node:fs"
import { tmpdir } from "node:os"
import { Effect, Layer, ManagedRuntime } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../src/db/Database.ts"
import * as Migrator from "../src/db/Migrator.ts"
import { JobRepo } from "../src/queue/JobRepo.ts"
import { Queue } from "../src/queue/Queue.ts"
import { QueueRepo } from "../src/queue/QueueRepo.ts"
import { WorkerRepo } from "../src/queue/WorkerRepo.ts"
import { kinds, recordLogTables } from "./fixtures/recordingKinds.ts"
import { emptyDatabase } from "./support/database.ts"
import { exited, fleet, started } from "./support/processes.ts"
import { queueRuntime, setupQueueTests, waitFor } from "./support/runtime.ts"

const { db, run } = await setupQueueTests(import.meta.file, kinds)
await run(
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.forEach(recordLogTables, (statement) => sql.unsafe(statement).raw)
  )
)
const { spawn } = fleet(db.url)

const sql = <A extends object>(f: (sql: SqlClient.SqlClient) => Effect.Effect<ReadonlyArray<A>, unknown>) =>
  run(Effect.flatMap(SqlClient.SqlClient, f) as Effect.Effect<ReadonlyArray<A>, never>)
const workerRepo = <A, E>(f: (repo: WorkerRepo["Service"]) => Effect.Effect<A, E>) =>
  run(WorkerRepo.use(f).pipe(Effect.provide(WorkerRepo.layer)))

const enqueueRecords = (queue: string, count: number, sleepMs: number, maxAttempts = 3) =>
  run(
    Queue.use((q) =>
      q.enqueueMany(
        Array.from({ length: count }, () => ({
          kind: "record",
          payload: { sleepMs, announce: true },
          queue,
          maxAttempts
        }))
      )
    )
  ).then((jobs) => jobs.map((j) => j.job.id as string))

interface Row {
  readonly id: string
  readonly xmin: string
  readonly status: string
  readonly owner: string | null
  readonly lease: Date | null
  readonly started: boolean
}
const rows = (ids: ReadonlyArray<string>) =>
  sql<Row>(
    (s) => s`
      SELECT id, xmin::text AS xmin, status, lease_owner AS owner, lease_expires_at AS lease, attempt_started AS started
      FROM jobs WHERE id = ANY(${ids}::uuid[]) ORDER BY id`
  )
const workerRow = async (id: string) =>
  (
    await sql<{ lease: Date; since: Date; beat: Date }>(
      (s) => s`
        SELECT lease_expires_at AS lease, live_since AS since, heartbeat_at AS beat FROM workers WHERE id = ${id}`
    )
  )[0]

describe("liveness per worker, across worker processes", () => {
  it("a killed worker's jobs cost no row writes while it lives, and are rescued once its row's lease ran out", async () => {
    const queue = "hb-killed"
    const leaseMs = 1000
    const settings = {
      WORKER_LEASE: `${leaseMs} millis`,
      WORKER_LEASE_RENEW: "200 millis",
      WORKER_RESCUE_INTERVAL: "200 millis",
      WORKER_LEADER_LEASE: "1 second"
    }
    // the rescuer serves another queue: whatever the doomed worker held stays rescued, not run again
    const rescuer = spawn("hb-rescuer", { ...settings, WORKER_QUEUES: "hb-elsewhere" })
    const doomed = spawn("hb-doomed", { ...settings, WORKER_QUEUES: queue })
    await Promise.all([started(rescuer), started(doomed)])
    const ids = await enqueueRecords(queue, 3, 60_000)
    const running = await waitFor("the three jobs to run, their starts recorded", async () => {
      const now = await rows(ids)
      return now.every((r) => r.status === "running" && r.started) ? now : undefined
    })
    // held by the worker's row, not by leases of their own
    expect(running.map((r) => [r.owner, r.lease])).toEqual(Array(3).fill(["hb-doomed", null]))
    // three more heartbeats (the row's lease moves on), and not one write to the jobs' rows
    const before = (await workerRow("hb-doomed"))!
    await waitFor(
      "three heartbeats",
      async () => {
        const now = (await workerRow("hb-doomed"))!
        return now.lease.getTime() >= before.lease.getTime() + 3 * 200 ? true : undefined
      },
      { timeoutMs: 5_000 }
    )
    expect((await rows(ids)).map((r) => r.xmin)).toEqual(running.map((r) => r.xmin))

    doomed.process.kill("SIGKILL")
    await exited(doomed)
    // the lease the dead worker's row held, as the database last wrote it
    const last = (await workerRow("hb-doomed"))!
    const rescued = await waitFor(
      "the jobs to be rescued",
      async () => {
        const jobs = await Promise.all(ids.map((id) => run(Queue.use((q) => q.get(id)))))
        return jobs.every((j) => j.status !== "running") ? jobs : undefined
      },
      { timeoutMs: 10_000 }
    )
    for (const job of rescued) {
      expect([job.status, job.attempts, job.leaseOwner]).toEqual(["retrying", 1, null])
      expect(job.errors.map((e) => e.error)).toEqual(["lease expired: worker hb-doomed stopped renewing it"])
      // rescued after the row's lease ran out, and within a leader takeover and a rescue interval of it
      const at = Date.parse(job.errors[0]!.at)
      expect(at).toBeGreaterThanOrEqual(last.lease.getTime() - 1)
      expect(at).toBeLessThan(last.lease.getTime() + (4 / 3) * 1000 + 200 + 1500)
    }
    rescuer.process.kill("SIGTERM")
    await exited(rescuer)
  })

  it("a frozen worker's job is rescued and run by another; thawed, the frozen one changes nothing and starts a new lease", async () => {
    const queue = "hb-frozen"
    const settings = {
      WORKER_QUEUES: queue,
      WORKER_LEASE_RENEW: "200 millis",
      WORKER_RESCUE_INTERVAL: "200 millis",
      WORKER_LEADER_LEASE: "1 second"
    }
    // the frozen one's lease is what runs out; the other's is long, so that a loaded machine's pauses cannot
    // cost it its run of the job too
    const frozen = spawn("hb-frozen", { ...settings, WORKER_LEASE: "2 seconds" })
    await started(frozen)
    // long enough that it still runs when the second worker has started (under load, seconds)
    const [id] = await enqueueRecords(queue, 1, 5000)
    await waitFor("the frozen-to-be worker to run the job", async () => {
      const [row] = await rows([id!])
      return row?.status === "running" && row.started && row.owner === "hb-frozen" ? true : undefined
    })
    const other = spawn("hb-thawed-other", { ...settings, WORKER_LEASE: "10 seconds" })
    await started(other)
    expect((await rows([id!]))[0]).toMatchObject({ status: "running", owner: "hb-frozen" })
    frozen.process.kill("SIGSTOP")
    let finished: Awaited<ReturnType<typeof rows>>[number]
    let thawedAt: number
    try {
      finished = await waitFor(
        "the other worker to finish the rescued job",
        async () => {
          const [row] = await rows([id!])
          return row?.status === "succeeded" ? row : undefined
        },
        { timeoutMs: 20_000 }
      )
    } finally {
      thawedAt = Date.now()
      frozen.process.kill("SIGCONT")
    }
    const done = await run(Queue.use((q) => q.get(id!)))
    expect(done.attempts).toBe(2)
    expect(done.result).toEqual({ pid: other.process.pid })
    expect(done.errors.map((e) => e.error)).toEqual(["lease expired: worker hb-frozen stopped renewing it"])
    // thawed, the worker's heartbeat finds its lease ran out and begins a new one; its run is stopped
    // (or, had its handler won the race, its completion matched nothing)
    await waitFor(
      "the thawed worker to begin a new lease",
      async () => {
        const row = await workerRow("hb-frozen")
        return row !== undefined && row.since.getTime() >= thawedAt - 1000 ? true : undefined
      },
      { timeoutMs: 10_000 }
    )
    await waitFor(
      "the thawed worker to give its run up",
      async () => ((await Bun.file(frozen.logFile).text()).includes("lost the lease") ? true : undefined),
      { timeoutMs: 10_000 }
    )
    // its look hands back what it gave up on: here nothing, the job is another's run's result
    const [after] = await rows([id!])
    expect(after).toEqual(finished!)
    const runs = await sql<{ worker: string }>(
      (s) => s`SELECT worker FROM processed_log WHERE job_id = ${id!} AND worker = 'hb-thawed-other'`
    )
    expect(runs).toEqual([{ worker: "hb-thawed-other" }])
    frozen.process.kill("SIGTERM")
    other.process.kill("SIGTERM")
    await Promise.all([exited(frozen), exited(other)])
  })
})

describe("liveness per worker, statement by statement", () => {
  const beat = (id: string, leaseMs: number, first: boolean) =>
    workerRepo((repo) =>
      repo.beat({ id, host: "h", pid: 1, queues: undefined, concurrency: 1, ttlMs: 15_000, leaseMs, first })
    )

  it("a stalled worker settles nothing once its job was rescued, and heartbeating again does not bring it back", async () => {
    const queue = "stalled-statements"
    expect(await beat("stalled", 300, true)).toEqual({ continued: false })
    expect(await beat("stalled", 300, false)).toEqual({ continued: true })
    const [job] = await enqueueRecords(queue, 1, 0)
    const [claimed] = await run(JobRepo.use((r) => r.claim("stalled", 1, null, [queue])))
    expect(claimed!.leaseExpiresAt).toBeNull()
    // the row holds it: no rescue
    expect((await run(JobRepo.use((r) => r.rescueExpired()))).map((r) => r.id)).not.toContain(job!)
    await waitFor("the stalled worker's lease to run out", async () => {
      const [row] = await sql<{ out: boolean }>(
        (s) => s`SELECT lease_expires_at < now() AS out FROM workers WHERE id = 'stalled'`
      )
      return row?.out === true ? true : undefined
    })
    // it heartbeats again: a new lease, which does not hold the job claimed under the old one
    expect(await beat("stalled", 60_000, false)).toEqual({ continued: false })
    const rescued = await run(JobRepo.use((r) => r.rescueExpired()))
    expect(rescued.filter((r) => r.id === job)).toEqual([
      { id: job as never, status: "queued", leaseOwner: "stalled", refunded: true }
    ])
    await beat("fresh", 60_000, true)
    expect((await run(JobRepo.use((r) => r.claim("fresh", 1, null, [queue])))).map((j) => j.id)).toEqual([
      job as never
    ])
    const [held] = await rows([job!])
    // whatever the stalled worker still sends matches nothing
    expect(
      await run(JobRepo.use((r) => r.complete("stalled", [{ id: job!, result: { late: true } }])))
    ).toEqual([])
    expect(
      await run(
        JobRepo.use((r) => r.fail("stalled", { id: job!, error: "late", retryDelayMs: 0, permanent: false }))
      )
    ).toBeUndefined()
    expect(await run(JobRepo.use((r) => r.settleCancelled("stalled", job!)))).toBe(false)
    expect(await run(JobRepo.use((r) => r.release("stalled", [job!])))).toEqual([])
    expect(await run(JobRepo.use((r) => r.abandon("stalled", [job!])))).toEqual([])
    expect(await rows([job!])).toEqual([held!])
    // and the new holder completes it
    expect(await run(JobRepo.use((r) => r.complete("fresh", [{ id: job!, result: null }])))).toEqual([
      job as never
    ])
  })

  it("a process's first heartbeat begins a new lease even when the row's had not run out (same id, restarted)", async () => {
    const queue = "restarted-statements"
    await beat("restarted", 60_000, true)
    const [job] = await enqueueRecords(queue, 1, 0)
    await run(JobRepo.use((r) => r.claim("restarted", 1, null, [queue])))
    expect((await run(JobRepo.use((r) => r.rescueExpired()))).map((r) => r.id as string)).not.toContain(job!)
    // the process restarted with the same WORKER_ID: what the old one held is not the new one's
    expect(await beat("restarted", 60_000, true)).toEqual({ continued: false })
    expect((await run(JobRepo.use((r) => r.rescueExpired()))).map((r) => r.id as string)).toContain(job!)
  })

  it("a worker's jobs count against a concurrency limit while its row holds them, and no longer once its lease ran out", async () => {
    const queue = "limit-by-row"
    await run(Queue.use((q) => q.setLimits(queue, { concurrencyLimit: 1 })))
    await enqueueRecords(queue, 2, 0)
    await beat("limited-a", 400, true)
    await beat("limited-b", 60_000, true)
    const claim = (worker: string) =>
      run(QueueRepo.use((r) => r.claimLimited(worker, 5, null, [queue]))).then((c) => c.jobs.length)
    expect(await claim("limited-a")).toBe(1)
    expect(await claim("limited-b")).toBe(0)
    await waitFor(
      "limited-a's lease to run out",
      async () => ((await claim("limited-b")) === 1 ? true : undefined),
      {
        timeoutMs: 5_000
      }
    )
    const [row] = await sql<{ out: boolean }>(
      (s) => s`SELECT lease_expires_at < now() AS out FROM workers WHERE id = 'limited-a'`
    )
    expect(row).toEqual({ out: true })
  })
})

describe("upgrading from per-job leases (before migration 0013)", () => {
  it("running jobs leased by old workers keep their leases; old rescuers leave new workers' jobs alone", async () => {
    const old = await emptyDatabase(`${import.meta.file}-upgrade`)
    const before = mkdtempSync(`${tmpdir()}/jobq-migrations-`)
    for (const file of readdirSync(Migrator.defaultDirectory()).filter((f) => f < "0013")) {
      cpSync(`${Migrator.defaultDirectory()}/${file}`, `${before}/${file}`)
    }
    const database = Database.layerUrl(old.url, { maxConnections: 4 })
    const migrateFrom = (directory?: string) =>
      Effect.runPromise(Migrator.migrate(directory).pipe(Effect.provide(database), Effect.orDie))
    await migrateFrom(before)
    const runtime = queueRuntime(old.url, kinds)
    const repos = ManagedRuntime.make(WorkerRepo.layer.pipe(Layer.provide(database)))
    try {
      const oldSql = <A extends object>(query: string) =>
        runtime.runPromise(
          Effect.flatMap(SqlClient.SqlClient, (s) => s.unsafe<A>(query)) as Effect.Effect<
            ReadonlyArray<A>,
            never
          >
        )
      // an old worker's row and three of its jobs: leased until 1.5 s from now, already expired, and one queued
      await oldSql(
        `INSERT INTO workers (id, host, pid, concurrency, expires_at) VALUES ('old-w', 'h', 1, 4, now() + interval '1 hour')`
      )
      await oldSql(`INSERT INTO jobs (id, queue, kind, payload, status, attempts, lease_owner, lease_expires_at, started_at, attempt_started)
        VALUES ('00000000-0000-4000-8000-000000000001', 'up', 'noop', '{}', 'running', 1, 'old-w', now() + interval '1500 milliseconds', now(), true),
               ('00000000-0000-4000-8000-000000000002', 'up', 'noop', '{}', 'running', 1, 'old-w', now() - interval '1 second', now() - interval '31 seconds', true),
               ('00000000-0000-4000-8000-000000000003', 'up', 'noop', '{}', 'queued', 0, NULL, NULL, NULL, false)`)
      await migrateFrom()
      const live = "00000000-0000-4000-8000-000000000001"
      const expired = "00000000-0000-4000-8000-000000000002"
      // the new rescuer honours the per-job leases: the expired one goes, the live one stays
      const first = await runtime.runPromise(JobRepo.use((r) => r.rescueExpired()))
      expect(first.map((r) => r.id)).toEqual([expired as never])
      // the live one counts against a limit, as its old worker believes
      await runtime.runPromise(Queue.use((q) => q.setLimits("up", { concurrencyLimit: 1 })))
      await repos.runPromise(
        WorkerRepo.use((r) =>
          r.beat({
            id: "new-w",
            host: "h",
            pid: 2,
            queues: undefined,
            concurrency: 4,
            ttlMs: 15_000,
            leaseMs: 60_000,
            first: true
          })
        )
      )
      const limited = () =>
        runtime
          .runPromise(QueueRepo.use((r) => r.claimLimited("new-w", 5, null, ["up"])))
          .then((c) => c.jobs.map((j) => j.id))
      // the queue is full: the old worker's live lease and, once rescued, the job it held back (queued again)
      expect(await limited()).toEqual([])
      // its old worker stopped renewing: rescued once the lease ran out, not before
      const rescued = await waitFor(
        "the old worker's lease to run out and its job to be rescued",
        async () => {
          const got = await runtime.runPromise(JobRepo.use((r) => r.rescueExpired()))
          return got.length > 0 ? got : undefined
        },
        { timeoutMs: 5_000 }
      )
      expect(rescued.map((r) => r.id)).toEqual([live as never])
      const [lease] = await oldSql<{ past: boolean }>(
        `SELECT now() >= started_at + interval '1500 milliseconds' AS past FROM jobs WHERE id = '${live}'`
      )
      expect(lease).toEqual({ past: true })
      // a new worker's claim holds no lease of its own, so the old rescue statement (still run by an old
      // maintainer during a rolling upgrade) does not see it expire
      const claimed = await limited()
      expect(claimed.length).toBe(1)
      const oldRescueWouldTake = await oldSql<{ id: string }>(
        `SELECT id FROM jobs WHERE status = 'running' AND lease_expires_at < now()`
      )
      expect(oldRescueWouldTake).toEqual([])
      expect(await runtime.runPromise(JobRepo.use((r) => r.rescueExpired()))).toEqual([])
    } finally {
      await repos.dispose()
      await runtime.dispose()
      await old.drop()
    }
  })
})
