import { afterAll, describe, expect, it } from "bun:test"
import { Effect, Exit, Fiber, Layer, ManagedRuntime, Option, References, Schema } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../src/db/Database.ts"
import type { Job } from "../src/domain/Job.ts"
import { defineKind, PermanentError } from "../src/domain/JobKind.ts"
import { demoKinds } from "../src/kinds/DemoKinds.ts"
import * as QueueLayer from "../src/queue/layer.ts"
import { Queue } from "../src/queue/Queue.ts"
import * as Worker from "../src/worker/index.ts"
import { blocking, finalized, stamp, started } from "./fixtures/observedKinds.ts"
import { freshDatabase } from "./support/database.ts"
import { waitFor } from "./support/runtime.ts"

const alwaysFails = defineKind({
  name: "always_fails",
  payload: Schema.Struct({}),
  handler: (_, { attempt }) => Effect.fail(new Error(`boom on attempt ${attempt}`))
})
const refuses = defineKind({
  name: "refuses",
  payload: Schema.Struct({}),
  handler: () => Effect.fail(new PermanentError({ message: "this can never work" }))
})
const slow = defineKind({
  name: "slow",
  payload: Schema.Struct({}),
  timeout: "100 millis",
  handler: () => Effect.sleep("10 seconds")
})
/** What a handler's logs are annotated with, by job id (its own fiber's, and a fiber it forks). */
const seenAnnotations = new Map<string, ReadonlyArray<Readonly<Record<string, unknown>>>>()
const annotated = defineKind({
  name: "annotated",
  payload: Schema.Struct({}),
  handler: (_, { job }) =>
    Effect.gen(function* () {
      const annotations = Effect.gen(function* () {
        return yield* References.CurrentLogAnnotations
      })
      const own = yield* annotations
      const child = yield* Fiber.join(yield* Effect.forkChild(annotations))
      seenAnnotations.set(job.id, [own, child])
    })
})
const kinds = [...demoKinds, blocking, alwaysFails, refuses, slow, stamp, annotated]
const db = await freshDatabase(import.meta.file)
const runtime = ManagedRuntime.make(
  Layer.mergeAll(
    Worker.layer({
      kinds,
      // a long poll interval: pickups faster than this prove NOTIFY woke the worker
      settings: { concurrency: 8, pollInterval: "5 seconds", renewInterval: "200 millis" },
      retry: { base: "20 millis", cap: "100 millis" }
    }),
    QueueLayer.layer(kinds)
  ).pipe(Layer.provideMerge(Database.layerUrl(db.url, { applicationName: "jobq-worker-test" })))
)
afterAll(async () => {
  await runtime.dispose()
  await db.drop()
})

const enqueue = (kind: string, payload: unknown, options: { maxAttempts?: number } = {}) =>
  runtime.runPromise(Queue.use((q) => q.enqueue({ kind, payload, ...options }))).then((e) => e.job)
const get = (id: string) => runtime.runPromise(Queue.use((q) => q.get(id)))
const settled = (id: string, status: Job["status"], timeoutMs = 10_000) =>
  waitFor(
    `job ${id} to be ${status}`,
    async () => {
      const job = await get(id)
      return job.status === status ? job : undefined
    },
    { timeoutMs }
  )

describe("worker pool", () => {
  it("runs a job to succeeded and stores its result", async () => {
    const job = await enqueue("cpu_hash", { seed: "abc", rounds: 3 })
    const done = await settled(job.id, "succeeded")
    expect(done.result).toEqual({
      rounds: 3,
      digest: expect.stringMatching(/^[0-9a-f]{64}$/)
    })
    expect(done.attempts).toBe(1)
    expect(done.finishedAt).toBeInstanceOf(Date)
  })

  it("a job's logs name the job, its kind and its attempt, in its fiber and in fibers it forks", async () => {
    const job = await enqueue("annotated", {})
    await settled(job.id, "succeeded")
    const expected = { fiber: "job", jobId: job.id, kind: "annotated", attempt: 1 }
    const [own, child] = seenAnnotations.get(job.id)!
    expect(own).toMatchObject(expected)
    expect(child).toMatchObject(expected)
  })

  it("retries a job that fails once, then it succeeds", async () => {
    const job = await enqueue("flaky", { failTimes: 1 })
    const done = await settled(job.id, "succeeded")
    expect(done.attempts).toBe(2)
    expect(done.result).toEqual({ succeededOnAttempt: 2 })
    expect(done.errors.map((e) => e.attempt)).toEqual([1])
  })

  it("fails a job permanently once its attempts are spent, keeping every error", async () => {
    const job = await enqueue("always_fails", {}, { maxAttempts: 3 })
    const done = await settled(job.id, "failed_permanent")
    expect(done.attempts).toBe(3)
    expect(done.errors.map((e) => e.error)).toEqual([
      "Error: boom on attempt 1",
      "Error: boom on attempt 2",
      "Error: boom on attempt 3"
    ])
    expect(done.errors[0]!.retryDelayMs).toBeGreaterThanOrEqual(20)
    expect(done.errors[2]!.retryDelayMs).toBeNull()
    expect(done.lastError).toBe("Error: boom on attempt 3")
  })

  it("a PermanentError ends the job at once", async () => {
    const job = await enqueue("refuses", {}, { maxAttempts: 5 })
    const done = await settled(job.id, "failed_permanent")
    expect(done.attempts).toBe(1)
    expect(done.lastError).toContain("this can never work")
  })

  it("an attempt over its kind's timeout fails with a timeout error", async () => {
    const job = await enqueue("slow", {}, { maxAttempts: 1 })
    const done = await settled(job.id, "failed_permanent")
    expect(done.lastError).toContain("timed out after")
  })

  // how the request reaches the worker (NOTIFY, or the lease renewal) is tested path by path, each alone,
  // in worker-wakeups.test.ts; here either may deliver it
  it("cancelling a running job interrupts its fiber: finalizers run, the job ends cancelled", async () => {
    const job = await enqueue("blocking", {})
    await waitFor("the job to start", async () => started.get(job.id))
    const outcome = await runtime.runPromise(Queue.use((q) => q.cancel(job.id)))
    expect(outcome.outcome).toBe("cancel_requested")
    const done = await settled(job.id, "cancelled")
    expect(finalized.has(job.id)).toBe(true)
    expect(done.attempts).toBe(1)
    expect(done.lastError).toBeNull()
  })

  it("cancel racing completion: each job ends as its cancel answered, and cancels take effect", async () => {
    // most jobs take 0-3 ms and race their cancel; every fifth would run 5 s, so it ends cancelled only if
    // its cancel took effect
    const long = (i: number) => i % 5 === 4
    const jobs = await Promise.all(
      Array.from({ length: 20 }, (_, i) => enqueue("stamp", { sleepMs: long(i) ? 5_000 : i % 4 }))
    )
    const answers = await Promise.all(
      jobs.map((job) => runtime.runPromiseExit(Queue.use((q) => q.cancel(job.id))))
    )
    const finals = await Promise.all(
      jobs.map((job) =>
        waitFor(`job ${job.id} to finish`, async () => {
          const now = await get(job.id)
          return ["succeeded", "cancelled", "failed_permanent"].includes(now.status) ? now : undefined
        })
      )
    )
    finals.forEach((job, i) => {
      const answer = answers[i]!
      // the API answers these 200, 202 and 409
      const said = Exit.isSuccess(answer)
        ? answer.value.outcome
        : Option.getOrUndefined(Exit.findErrorOption(answer))?._tag
      if (said === "cancelled") {
        // it was still waiting: it never ran
        expect(job).toMatchObject({ status: "cancelled", attempts: 0 })
        expect(started.has(job.id)).toBe(false)
      } else if (said === "cancel_requested") {
        // it was claimed: interrupted, or it finished first
        expect(["cancelled", "succeeded"]).toContain(job.status)
        expect(job.attempts).toBe(1)
      } else {
        // it had already finished
        expect(said).toBe("JobStateConflict")
        expect(job.status).toBe("succeeded")
      }
      if (job.status === "succeeded") expect(job.result).toEqual({ done: true })
      else expect(job.result).toBeNull()
      expect(job.leaseOwner).toBeNull()
      if (long(i)) expect(job.status).toBe("cancelled")
    })
  })

  it("a job enqueued on an idle queue starts within 50 ms (NOTIFY, not polling)", async () => {
    const latencies: Array<number> = []
    for (let i = 0; i < 7; i++) {
      await Bun.sleep(30)
      const before = performance.now()
      const job = await enqueue("stamp", { sleepMs: 0 })
      const startedAt = await waitFor("the job to start", async () => started.get(job.id))
      latencies.push(startedAt - before)
      await settled(job.id, "succeeded")
    }
    latencies.sort((a, b) => a - b)
    expect(latencies[3]!).toBeLessThan(50)
    expect(latencies[6]!).toBeLessThan(1000)
  })

  it("carries on after its database sessions are terminated; nothing is lost", async () => {
    const terminated = await runtime.runPromise(
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) =>
          sql<{ n: number }>`
          SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
          WHERE application_name = 'jobq-worker-test' AND pid <> pg_backend_pid()`
      )
    )
    expect(terminated[0]!.n).toBeGreaterThan(0)
    const jobs = await waitFor("enqueue to work again", async () =>
      Promise.all(Array.from({ length: 10 }, () => enqueue("noop", {}))).catch(() => undefined)
    )
    // this test's own pool had sessions terminated too: a read may meet one of them once (and drop it)
    for (const job of jobs) {
      await waitFor(
        `job ${job.id} to succeed`,
        async () => (await get(job.id).catch(() => undefined))?.status === "succeeded" || undefined,
        { timeoutMs: 20_000 }
      )
    }
    // every dead session of the test's pool is gone before the next test uses it
    await waitFor("the test's pool to answer on every connection", async () =>
      Promise.all(Array.from({ length: 20 }, () => get(jobs[0]!.id)))
        .then(() => true)
        .catch(() => undefined)
    )
  })
})

describe("delayed jobs", () => {
  it("a job delayed by 300 ms starts when it is due, not at the next poll", async () => {
    const before = performance.now()
    const job = await runtime
      .runPromise(Queue.use((q) => q.enqueue({ kind: "stamp", payload: { sleepMs: 0 }, delayMs: 300 })))
      .then((e) => e.job)
    const startedAt = await waitFor("the delayed job to start", async () => started.get(job.id))
    expect(startedAt - before).toBeGreaterThanOrEqual(250)
    expect(startedAt - before).toBeLessThan(1500)
  })
})
