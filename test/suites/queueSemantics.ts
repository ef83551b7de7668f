/**
 * The queue's semantics, defined once and run against each SQL driver: Postgres through `@effect/sql-pg`
 * (test/queue-semantics-pg.test.ts) and embedded PGlite (test/queue-semantics-pglite.test.ts).
 *
 * Tests that need concurrent connections (SKIP LOCKED between claimers, idempotency races) are Postgres-only
 * and live in claim.test.ts and idempotency.test.ts: PGlite has one backend, so there is nothing to race.
 */
import { afterAll, describe, expect, it } from "bun:test"
import { Effect, Queue as EffectQueue, Layer, ManagedRuntime } from "effect"
import { SqlClient } from "effect/sql"
import type { Sql } from "../../src/db/Database.ts"
import * as Migrator from "../../src/db/Migrator.ts"
import { Notifications } from "../../src/db/Notifications.ts"
import type { NewJob } from "../../src/domain/Job.ts"
import { demoKinds } from "../../src/kinds/DemoKinds.ts"
import { JobRepo } from "../../src/queue/JobRepo.ts"
import * as QueueLayer from "../../src/queue/layer.ts"
import { Queue } from "../../src/queue/Queue.ts"
import * as Worker from "../../src/worker/index.ts"
import { waitFor } from "../support/runtime.ts"

export interface Driver {
  readonly name: string
  /** A fresh, empty database with the driver's layer; `close` removes it. */
  readonly open: () => Promise<{
    readonly layer: Layer.Layer<Sql, unknown>
    readonly close: () => Promise<void>
  }>
}

export const queueSemantics = async (driver: Driver) => {
  const { layer, close } = await driver.open()
  const runtime = ManagedRuntime.make(
    Layer.mergeAll(
      QueueLayer.layer(demoKinds),
      // this worker's own lease rescue runs once at start and then never again in a test run: the rescue test
      // below must see its expired lease still there for its own `rescueExpired` call
      Worker.layer({
        kinds: demoKinds,
        settings: { concurrency: 4, queues: ["worker"], rescueInterval: "1 hour" }
      })
    ).pipe(Layer.provide(Layer.effectDiscard(Effect.orDie(Migrator.migrate()))), Layer.provideMerge(layer))
  )
  afterAll(async () => {
    await runtime.dispose()
    await close()
  })
  // build the layers (open the database, migrate, start the worker) before the first test's clock starts
  await runtime.runPromise(Effect.void)
  const run = <A, E>(effect: Effect.Effect<A, E, Queue | JobRepo | Sql>) => runtime.runPromise(effect)
  let n = 0
  const uniqueQueue = () => `${driver.name}-${++n}`
  const enqueue = (job: Partial<NewJob> & { queue: string }) =>
    run(Queue.use((q) => q.enqueue({ kind: "noop", payload: {}, ...job }))).then((e) => e.job)
  const claim = (worker: string, queue: string, leaseMs = 30_000) =>
    run(JobRepo.use((r) => r.claim(worker, 10, leaseMs, [queue])))
  const get = (id: string) => run(Queue.use((q) => q.get(id)))
  /** Waits until the job's lease has expired by the database's clock. */
  const leaseExpired = (id: string) =>
    waitFor("the lease to expire", async () => {
      const rows = await run(
        SqlClient.SqlClient.use(
          (sql) => sql`SELECT 1 FROM jobs WHERE id = ${id} AND lease_expires_at < now()`
        )
      )
      return rows.length === 1 ? true : undefined
    })

  describe(`queue semantics on ${driver.name}`, () => {
    it("enqueue stores the job with its defaults and get reads it back", async () => {
      const queue = uniqueQueue()
      const job = await enqueue({ queue, kind: "sleep", payload: { ms: 5 }, priority: 3 })
      const read = await get(job.id)
      expect(read).toMatchObject({ queue, kind: "sleep", payload: { ms: 5 }, status: "queued", priority: 3 })
      expect(read.attempts).toBe(0)
      expect(read.maxAttempts).toBe(5)
      expect(read.runAt).toBeInstanceOf(Date)
    })

    it("awaitResult wakes when the worker finishes the job (jobq_finished), and times out with it as it stands", async () => {
      const pending = await enqueue({ queue: uniqueQueue() })
      expect(await run(Queue.use((q) => q.awaitResult(pending.id, "50 millis")))).toMatchObject({
        finished: false,
        job: { id: pending.id, status: "queued" }
      })
      const started = performance.now()
      const outcome = await run(
        Queue.use((q) => q.enqueueAndWait({ kind: "noop", payload: {}, queue: "worker" }, "20 seconds"))
      )
      expect(outcome).toMatchObject({ created: true, finished: true, job: { status: "succeeded" } })
      expect(performance.now() - started).toBeLessThan(5_000)
    })

    it("claims in priority order, skips jobs not yet due, and leases what it takes", async () => {
      const queue = uniqueQueue()
      const low = await enqueue({ queue, priority: 5 })
      const high = await enqueue({ queue, priority: -5 })
      await enqueue({ queue, delayMs: 60_000 })
      const claimed = await claim("w1", queue)
      expect(claimed.map((j) => j.id)).toEqual(expect.arrayContaining([high.id, low.id]))
      expect(claimed.length).toBe(2)
      expect(claimed.every((j) => j.status === "running" && j.leaseOwner === "w1" && j.attempts === 1)).toBe(
        true
      )
      expect(await claim("w2", queue)).toEqual([])
    })

    it("an enqueued job is the row as stored, one at a time and in a batch", async () => {
      const queue = uniqueQueue()
      const one = await enqueue({ queue, kind: "sleep", payload: { ms: 7 }, priority: -3, maxAttempts: 2 })
      expect(one).toEqual(await get(one.id))
      const many = await run(
        Queue.use((q) =>
          q.enqueueMany([
            { kind: "noop", payload: {}, queue, delayMs: 60_000, idempotencyKey: `${queue}-a` },
            { kind: "sleep", payload: { ms: 1 }, queue, runAt: new Date("2030-01-02T03:04:05.678Z") }
          ])
        )
      )
      for (const { job } of many) expect(job).toEqual(await get(job.id))
    })

    it("a batch stores each row's queue, kind, payload, priority and attempts, shared by all or not", async () => {
      const queue = uniqueQueue()
      const same = await run(
        Queue.use((q) =>
          q.enqueueMany(
            Array.from({ length: 3 }, () => ({
              kind: "sleep",
              payload: { ms: 3 },
              queue,
              priority: 2,
              maxAttempts: 7
            }))
          )
        )
      )
      const mixed = await run(
        Queue.use((q) =>
          q.enqueueMany([
            { kind: "sleep", payload: { ms: 4 }, queue, priority: 1, maxAttempts: 3 },
            { kind: "noop", payload: {}, queue: `${queue}-b`, priority: -5 },
            { kind: "sleep", payload: { ms: 4 }, queue, priority: 1, maxAttempts: 9 }
          ])
        )
      )
      for (const { job } of [...same, ...mixed]) expect(job).toEqual(await get(job.id))
      expect(
        same.map(({ job }) => [job.kind, job.queue, job.payload, job.priority, job.maxAttempts])
      ).toEqual(Array.from({ length: 3 }, () => ["sleep", queue, { ms: 3 }, 2, 7]))
      expect(
        mixed.map(({ job }) => [job.kind, job.queue, job.payload, job.priority, job.maxAttempts])
      ).toEqual([
        ["sleep", queue, { ms: 4 }, 1, 3],
        ["noop", `${queue}-b`, {}, -5, 5],
        ["sleep", queue, { ms: 4 }, 1, 9]
      ])
    })

    // no idempotency key in this batch: the insert answers only its `now()` and the jobs are made from it
    it("a batch keeps each job's own options: delays beyond 32 bits, trace contexts, nulls beside values", async () => {
      const queue = uniqueQueue()
      const traceContext = { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" }
      const day = 86_400_000
      const at = new Date("2030-01-02T03:04:05.678Z")
      const [far, soon, near, fixed] = await run(
        Queue.use((q) =>
          q.enqueueMany([
            { kind: "noop", payload: {}, queue, delayMs: 300 * day },
            { kind: "noop", payload: {}, queue, delayMs: 60_000 },
            { kind: "sleep", payload: { ms: 2 }, queue, traceContext },
            { kind: "noop", payload: {}, queue, runAt: at }
          ])
        )
      )
      expect(fixed!.job.runAt).toEqual(at)
      expect(fixed!.job).toEqual(await get(fixed!.job.id))
      expect(far!.job.runAt.getTime() - far!.job.createdAt.getTime()).toBe(300 * day)
      expect(soon!.job.runAt.getTime() - soon!.job.createdAt.getTime()).toBe(60_000)
      expect(near!.job.runAt).toEqual(near!.job.createdAt)
      for (const { job } of [far!, soon!, near!]) expect(job).toEqual(await get(job.id))
      const [claimed] = await claim("w1", queue)
      expect(claimed).toMatchObject({ id: near!.job.id, payload: { ms: 2 }, traceContext })
    })

    it("a claimed job is the row as stored, on its first attempt and on a retry", async () => {
      const queue = uniqueQueue()
      const job = await enqueue({ queue, priority: 2, idempotencyKey: `${queue}-key` })
      const [first] = await claim("w1", queue)
      expect(first).toEqual({
        ...(await get(job.id)),
        traceContext: null,
        recordStartFirst: false,
        flowId: null,
        parents: null
      })
      await run(
        JobRepo.use((r) => r.fail("w1", { id: job.id, error: "boom", retryDelayMs: 0, permanent: false }))
      )
      const [second] = await claim("w2", queue)
      expect(second).toEqual({
        ...(await get(job.id)),
        traceContext: null,
        recordStartFirst: false,
        flowId: null,
        parents: null
      })
      expect(second).toMatchObject({ attempts: 2, lastError: "boom", leaseOwner: "w2" })
    })

    it("complete stores the result; only the lease owner may settle", async () => {
      const queue = uniqueQueue()
      const job = await enqueue({ queue })
      await claim("w1", queue)
      expect(await run(JobRepo.use((r) => r.complete("intruder", [{ id: job.id, result: 1 }])))).toEqual([])
      expect(await run(JobRepo.use((r) => r.complete("w1", [{ id: job.id, result: { ok: true } }])))).toEqual(
        [job.id]
      )
      expect(await get(job.id)).toMatchObject({ status: "succeeded", result: { ok: true }, leaseOwner: null })
    })

    it("complete without results marks every job of the batch succeeded with a null result", async () => {
      const queue = uniqueQueue()
      const a = await enqueue({ queue })
      const b = await enqueue({ queue })
      await claim("w1", queue)
      const done = await run(
        JobRepo.use((r) =>
          r.complete("w1", [
            { id: a.id, result: undefined },
            { id: b.id, result: null }
          ])
        )
      )
      expect([...done].sort()).toEqual([a.id, b.id].sort())
      for (const id of [a.id, b.id]) {
        expect(await get(id)).toMatchObject({ status: "succeeded", result: null, leaseOwner: null })
      }
    })

    it("fail schedules a retry, then fails permanently when attempts are spent", async () => {
      const queue = uniqueQueue()
      const job = await enqueue({ queue, maxAttempts: 2 })
      await claim("w1", queue)
      const later = await run(
        JobRepo.use((r) =>
          r.fail("w1", { id: job.id, error: "first", retryDelayMs: 60_000, permanent: false })
        )
      )
      expect(later?.status).toBe("retrying")
      expect(later!.runAt.getTime()).toBeGreaterThan(Date.now() + 50_000)
      expect(await claim("w1", queue)).toEqual([])
      // a stale worker's failure changes nothing
      expect(
        await run(
          JobRepo.use((r) => r.fail("w1", { id: job.id, error: "stale", retryDelayMs: 0, permanent: false }))
        )
      ).toBeUndefined()
      const retried = await enqueue({ queue, maxAttempts: 2 })
      for (const attempt of [1, 2]) {
        expect((await claim("w2", queue)).map((j) => j.attempts)).toEqual([attempt])
        await run(
          JobRepo.use((r) =>
            r.fail("w2", { id: retried.id, error: `e${attempt}`, retryDelayMs: 0, permanent: false })
          )
        )
      }
      const done = await get(retried.id)
      expect(done.status).toBe("failed_permanent")
      expect(done.errors.map((e) => e.error)).toEqual(["e1", "e2"])
    })

    it("cancel: queued -> cancelled, running -> requested, finished -> conflict", async () => {
      const queue = uniqueQueue()
      const queued = await enqueue({ queue })
      expect((await run(Queue.use((q) => q.cancel(queued.id)))).outcome).toBe("cancelled")
      const running = await enqueue({ queue })
      await claim("w1", queue)
      expect((await run(Queue.use((q) => q.cancel(running.id)))).outcome).toBe("cancel_requested")
      expect(await run(JobRepo.use((r) => r.settleCancelled("w1", running.id)))).toBe(true)
      const conflict = await run(Effect.flip(Queue.use((q) => q.cancel(running.id))))
      expect(conflict._tag).toBe("JobStateConflict")
    })

    it("release gives a job back without spending its attempt; rescue takes back expired leases", async () => {
      const queue = uniqueQueue()
      const job = await enqueue({ queue })
      await claim("w1", queue)
      expect(await run(JobRepo.use((r) => r.release("w1", [job.id])))).toEqual([job.id])
      expect(await get(job.id)).toMatchObject({ status: "queued", attempts: 0 })
      await claim("w2", queue, 1)
      // its handler started (the worker's lease renewal says so), so the crashed attempt counts
      await run(JobRepo.use((r) => r.renewLeases("w2", [{ id: job.id, started: true }], 1)))
      await leaseExpired(job.id)
      const rescued = await run(JobRepo.use((r) => r.rescueExpired()))
      expect(rescued.map((r) => r.id)).toContain(job.id)
      expect(await get(job.id)).toMatchObject({ status: "retrying", attempts: 1, leaseOwner: null })
    })

    it("rescue refunds the attempt of a job whose start was never recorded, and says to record it first", async () => {
      const queue = uniqueQueue()
      const job = await enqueue({ queue, maxAttempts: 1 })
      const [claimed] = await claim("w1", queue, 1)
      expect(claimed).toMatchObject({ attempts: 1, recordStartFirst: false })
      await leaseExpired(job.id)
      const rescued = await run(JobRepo.use((r) => r.rescueExpired()))
      expect(rescued.find((r) => r.id === job.id)).toMatchObject({ status: "queued", refunded: true })
      const refunded = await get(job.id)
      expect(refunded).toMatchObject({ status: "queued", attempts: 0 })
      expect(refunded.errors.map((e) => e.error)).toEqual([
        "lease expired: worker w1 stopped renewing it before recording that the job started; attempt not counted"
      ])
      const [again] = await claim("w2", queue)
      expect(again).toMatchObject({ id: job.id, attempts: 1, recordStartFirst: true })
      expect(await run(JobRepo.use((r) => r.markStarted("w1", [job.id])))).toEqual([])
      expect(await run(JobRepo.use((r) => r.markStarted("w2", [job.id])))).toEqual([job.id])
    })

    it("an idempotency key returns the first job for a repeat and conflicts for another request", async () => {
      const queue = uniqueQueue()
      const first = await run(
        Queue.use((q) => q.enqueue({ kind: "noop", payload: {}, queue, idempotencyKey: "k" }))
      )
      const again = await run(
        Queue.use((q) => q.enqueue({ kind: "noop", payload: {}, queue, idempotencyKey: "k" }))
      )
      expect([first.created, again.created]).toEqual([true, false])
      expect(again.job.id).toBe(first.job.id)
      const other = await run(
        Effect.flip(
          Queue.use((q) => q.enqueue({ kind: "sleep", payload: { ms: 1 }, queue, idempotencyKey: "k" }))
        )
      )
      expect(other._tag).toBe("IdempotencyConflict")
    })

    it("enqueueMany is all or nothing", async () => {
      const queue = uniqueQueue()
      await run(Queue.use((q) => q.enqueue({ kind: "noop", payload: {}, queue, idempotencyKey: "taken" })))
      const error = await run(
        Effect.flip(
          Queue.use((q) =>
            q.enqueueMany([
              { kind: "noop", payload: {}, queue },
              { kind: "sleep", payload: { ms: 1 }, queue, idempotencyKey: "taken" }
            ])
          )
        )
      )
      expect(error._tag).toBe("IdempotencyConflict")
      const page = await run(Queue.use((q) => q.list({ queue })))
      expect(page.jobs.length).toBe(1)
    })

    it("list pages through every job exactly once", async () => {
      const queue = uniqueQueue()
      const ids = await run(
        Queue.use((q) =>
          q.enqueueMany(Array.from({ length: 7 }, () => ({ kind: "noop", payload: {}, queue })))
        )
      ).then((jobs) => jobs.map((j) => j.job.id))
      const seen: Array<string> = []
      let cursor: string | undefined
      for (;;) {
        const page = await run(Queue.use((q) => q.list({ queue, limit: 3, cursor })))
        seen.push(...page.jobs.map((j) => j.id))
        if (page.nextCursor === null) break
        cursor = page.nextCursor
      }
      expect(seen).toEqual(ids)
    })

    it("an enqueue notifies listeners on jobq_ready", async () => {
      const queue = uniqueQueue()
      const payload = await run(
        Effect.scoped(
          Effect.gen(function* () {
            const received = yield* (yield* Notifications).listen("jobq_ready")
            yield* Queue.use((q) => q.enqueue({ kind: "noop", payload: {}, queue }))
            for (;;) {
              const message = yield* EffectQueue.take(received)
              if (message.payload === queue) return message.payload
            }
          })
        ).pipe(Effect.timeout("5 seconds"))
      )
      expect(payload).toBe(queue)
    })

    it("the worker pool runs jobs to completion on this driver", async () => {
      const jobs = await run(
        Queue.use((q) =>
          q.enqueueMany([
            { kind: "cpu_hash", payload: { seed: "x", rounds: 2 }, queue: "worker" },
            { kind: "flaky", payload: { failTimes: 0 }, queue: "worker" }
          ])
        )
      )
      for (const { job } of jobs) {
        await waitFor(`job ${job.id} to succeed`, async () => {
          const now = await get(job.id)
          return now.status === "succeeded" ? now : undefined
        })
      }
    })

    it("a flow: a dependent is blocked, queued by its dependency's success with its result, cancelled by a failure", async () => {
      const queue = uniqueQueue()
      const flow = await run(
        Queue.use((q) =>
          q.enqueueFlow({
            jobs: [
              { name: "a", kind: "noop", payload: {}, queue },
              { name: "b", kind: "noop", payload: {}, queue, dependsOn: ["a"] },
              { name: "x", kind: "noop", payload: {}, queue },
              { name: "y", kind: "noop", payload: {}, queue, dependsOn: ["x"] }
            ]
          })
        )
      )
      expect(flow.jobs.map((j) => j.status)).toEqual(["queued", "blocked", "queued", "blocked"])
      const [a, b, x, y] = flow.jobs
      const claimed = await claim("w-flow", queue)
      expect(claimed.map((c) => c.id).sort()).toEqual([a!.id, x!.id].sort())
      await run(JobRepo.use((r) => r.complete("w-flow", [{ id: a!.id, result: { rows: 3 } }])))
      await run(
        JobRepo.use((r) => r.fail("w-flow", { id: x!.id, error: "no", retryDelayMs: 0, permanent: true }))
      )
      expect((await get(y!.id)).status).toBe("cancelled")
      const [dependent] = await claim("w-flow", queue)
      expect(dependent).toMatchObject({ id: b!.id, flowId: flow.id, parents: { a: { rows: 3 } } })
    })
  })
}
