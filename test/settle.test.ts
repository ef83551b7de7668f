/**
 * Settling a claimed job: complete, fail (retry or end), release, lease renewal and rescue. Every change a
 * worker makes is guarded by its lease: a worker that lost the job changes nothing.
 */
import { describe, expect, it } from "bun:test"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import type { NewJob } from "../src/domain/Job.ts"
import { type FailInput, JobRepo } from "../src/queue/JobRepo.ts"
import { Queue } from "../src/queue/Queue.ts"
import { setupQueueTests, waitFor } from "./support/runtime.ts"

const { run } = await setupQueueTests(import.meta.file)

let n = 0
const uniqueQueue = () => `settle-${++n}`

const enqueue = (queue: string, extra: Partial<NewJob> = {}) =>
  run(Queue.use((q) => q.enqueue({ kind: "noop", payload: {}, queue, ...extra }))).then((e) => e.job)

const claim = (worker: string, queue: string, leaseMs = 30_000, limit = 10) =>
  run(JobRepo.use((r) => r.claim(worker, limit, leaseMs, [queue])))

/** Enqueues one job, claims it as `worker` and records that its handler started. */
const running = async (worker: string, extra: Partial<NewJob> = {}, leaseMs = 30_000) => {
  const queue = uniqueQueue()
  const job = await enqueue(queue, extra)
  const [claimed] = await claim(worker, queue, leaseMs)
  expect(claimed?.id).toBe(job.id)
  expect(await run(JobRepo.use((r) => r.markStarted(worker, [job.id])))).toEqual([job.id])
  return { queue, job: claimed! }
}

const renew = (worker: string, ids: ReadonlyArray<string>, leaseMs: number) =>
  run(
    JobRepo.use((r) =>
      r.renewLeases(
        worker,
        ids.map((id) => ({ id, started: true })),
        leaseMs
      )
    )
  )

const get = (id: string) => run(Queue.use((q) => q.get(id)))
const fail = (worker: string, input: Partial<FailInput> & { id: string }) =>
  run(JobRepo.use((r) => r.fail(worker, { error: "boom", retryDelayMs: 0, permanent: false, ...input })))
const complete = (worker: string, id: string, result: unknown = { ok: true }) =>
  run(JobRepo.use((r) => r.complete(worker, [{ id, result }])))

/** The database's clock: run_at and leases are compared with now() there, not here. */
const dbNow = () =>
  run(
    Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ now: Date }>`SELECT now() AS now`).pipe(
      Effect.map((rows) => rows[0]!.now)
    )
  )

describe("complete", () => {
  it("stores the result and ends the job succeeded, lease cleared", async () => {
    const { job } = await running("w1")
    expect(await complete("w1", job.id, { answer: 42, list: [1, "two"] })).toEqual([job.id])
    const done = await get(job.id)
    expect(done.status).toBe("succeeded")
    expect(done.result).toEqual({ answer: 42, list: [1, "two"] })
    expect(done.finishedAt).toBeInstanceOf(Date)
    expect(done.leaseOwner).toBeNull()
    expect(done.leaseExpiresAt).toBeNull()
    expect(done.attempts).toBe(1)
  })

  it("stores any JSON result: string, array, number, null, and undefined as null", async () => {
    for (const result of ["plain string", [1, 2, 3], 7.5, null, false, undefined]) {
      const { job } = await running("w1")
      expect(await run(JobRepo.use((r) => r.complete("w1", [{ id: job.id, result }])))).toEqual([job.id])
      expect((await get(job.id)).result).toEqual(result === undefined ? null : result)
    }
  })

  it("a result containing NUL characters, which jsonb cannot hold, is stored with U+FFFD instead", async () => {
    const queue = uniqueQueue()
    for (let i = 0; i < 2; i++) await enqueue(queue)
    const [a, b] = await claim("w1", queue, 30_000, 2)
    // in one batch with a healthy result: one odd result must not sink the other
    const done = await run(
      JobRepo.use((r) =>
        r.complete("w1", [
          { id: a!.id, result: { "k\u0000": ["x\u0000y"], plain: "\\u0000 stays as typed" } },
          { id: b!.id, result: "fine" }
        ])
      )
    )
    expect([...done].sort()).toEqual([a!.id, b!.id].sort())
    expect((await get(a!.id)).result).toEqual({ "k\ufffd": ["x\ufffdy"], plain: "\\u0000 stays as typed" })
    expect((await get(b!.id)).result).toBe("fine")
  })

  it("completes several jobs in one call, and only those this worker holds", async () => {
    const queue = uniqueQueue()
    for (let i = 0; i < 3; i++) await enqueue(queue)
    const [a, b] = await claim("w1", queue, 30_000, 2)
    const [c] = await claim("w2", queue, 30_000, 1)
    const done = await run(
      JobRepo.use((r) =>
        r.complete("w1", [
          { id: a!.id, result: "a" },
          { id: b!.id, result: "b" },
          { id: c!.id, result: "stolen" }
        ])
      )
    )
    expect([...done].sort()).toEqual([a!.id, b!.id].sort())
    expect((await get(c!.id)).status).toBe("running")
    expect((await get(c!.id)).result).toBeNull()
  })
})

describe("fail", () => {
  it("schedules a retry: retrying, run_at in the future, not claimable before it, claimable after", async () => {
    const { queue, job } = await running("w1")
    const before = await dbNow()
    const failed = await fail("w1", { id: job.id, error: "first failure", retryDelayMs: 300 })
    expect(failed?.status).toBe("retrying")
    expect(failed!.runAt.getTime() - before.getTime()).toBeGreaterThanOrEqual(300)
    expect(failed!.lastError).toBe("first failure")
    expect(failed!.leaseOwner).toBeNull()
    expect(failed!.finishedAt).toBeNull()
    expect(failed!.errors).toEqual([
      {
        attempt: 1,
        at: expect.any(String),
        error: "first failure",
        retryDelayMs: 300,
        // the attempt's due and start, as the row held them when it failed
        dueAt: job.runAt.toISOString(),
        startedAt: job.startedAt!.toISOString()
      }
    ])

    expect(await claim("w2", queue)).toEqual([])
    const reclaimed = await waitFor("the retry to become claimable", async () => {
      const [j] = await claim("w2", queue)
      return j
    })
    expect(reclaimed.id).toBe(job.id)
    expect(reclaimed.attempts).toBe(2)
    const now = await dbNow()
    expect(now.getTime()).toBeGreaterThanOrEqual(failed!.runAt.getTime())
  })

  it("ends failed_permanent when attempts are exhausted, keeping every error", async () => {
    const { queue, job } = await running("w1", { maxAttempts: 3 })
    expect((await fail("w1", { id: job.id, error: "e1" }))?.status).toBe("retrying")
    await claim("w1", queue)
    expect((await fail("w1", { id: job.id, error: "e2", retryDelayMs: 5 }))?.status).toBe("retrying")
    await waitFor("the second retry", async () => (await claim("w1", queue))[0])
    const last = await fail("w1", { id: job.id, error: "e3", retryDelayMs: 1000 })
    expect(last?.status).toBe("failed_permanent")
    expect(last!.attempts).toBe(3)
    expect(last!.finishedAt).toBeInstanceOf(Date)
    expect(last!.lastError).toBe("e3")
    expect(
      last!.errors.map(({ attempt, error, retryDelayMs }) => ({ attempt, error, retryDelayMs }))
    ).toEqual([
      { attempt: 1, error: "e1", retryDelayMs: 0 },
      { attempt: 2, error: "e2", retryDelayMs: 5 },
      { attempt: 3, error: "e3", retryDelayMs: null }
    ])
    for (const e of last!.errors) expect(Number.isNaN(Date.parse(e.at))).toBe(false)
    expect(await claim("w1", queue)).toEqual([])
  })

  it("a permanent failure ends the job at once, attempts left unspent", async () => {
    const { queue, job } = await running("w1", { maxAttempts: 10 })
    const failed = await fail("w1", { id: job.id, error: "bad input", permanent: true, retryDelayMs: 100 })
    expect(failed?.status).toBe("failed_permanent")
    expect(failed!.attempts).toBe(1)
    expect(failed!.errors).toEqual([
      {
        attempt: 1,
        at: expect.any(String),
        error: "bad input",
        retryDelayMs: null,
        dueAt: job.runAt.toISOString(),
        startedAt: job.startedAt!.toISOString()
      }
    ])
    expect(await claim("w1", queue)).toEqual([])
  })

  it("a failure after a cancel was requested ends the job cancelled", async () => {
    const { queue, job } = await running("w1")
    expect((await run(Queue.use((q) => q.cancel(job.id)))).outcome).toBe("cancel_requested")
    const failed = await fail("w1", { id: job.id, error: "interrupted", retryDelayMs: 0 })
    expect(failed?.status).toBe("cancelled")
    expect(failed!.finishedAt).toBeInstanceOf(Date)
    expect(await claim("w1", queue)).toEqual([])
  })

  it("keeps an error containing NUL characters (U+FFFD in their place)", async () => {
    const { job } = await running("w1")
    const failed = await fail("w1", { id: job.id, error: "bad bytes: \u0000\u0001" })
    expect(failed?.status).toBe("retrying")
    expect(failed!.lastError).toBe("bad bytes: \ufffd\u0001")
    expect(failed!.errors[0]!.error).toBe("bad bytes: \ufffd\u0001")
  })

  it("keeps a long error, truncated", async () => {
    const { job } = await running("w1")
    const failed = await fail("w1", { id: job.id, error: "x".repeat(10_000) })
    expect(failed!.lastError!.length).toBeLessThan(4100)
    expect(failed!.lastError!.startsWith("x".repeat(4000))).toBe(true)
    expect(failed!.errors[0]!.error).toBe(failed!.lastError!)
  })
})

describe("leases", () => {
  it("a worker whose lease expired and was rescued cannot complete, fail or release the job", async () => {
    const { queue, job } = await running("w1", {}, 50)
    const rescued = await waitFor("the expired lease to be rescued", async () => {
      const rows = await run(JobRepo.use((r) => r.rescueExpired()))
      return rows.find((r) => r.id === job.id)
    })
    expect(rescued).toEqual({ id: job.id, status: "retrying", leaseOwner: "w1", refunded: false })
    const afterRescue = await get(job.id)
    expect(afterRescue.status).toBe("retrying")
    expect(afterRescue.lastError).toContain("lease expired")
    expect(afterRescue.errors).toEqual([
      {
        attempt: 1,
        at: expect.any(String),
        error: expect.stringContaining("w1"),
        retryDelayMs: null,
        dueAt: job.runAt.toISOString(),
        startedAt: job.startedAt!.toISOString()
      }
    ])

    const [again] = await claim("w2", queue)
    expect(again?.id).toBe(job.id)
    expect(again!.attempts).toBe(2)

    expect(await complete("w1", job.id, "late")).toEqual([])
    expect(await fail("w1", { id: job.id, error: "late failure" })).toBeUndefined()
    expect(await run(JobRepo.use((r) => r.release("w1", [job.id])))).toEqual([])
    expect(await run(JobRepo.use((r) => r.settleCancelled("w1", job.id)))).toBe(false)
    expect(await renew("w1", [job.id], 30_000)).toEqual([])
    const held = await get(job.id)
    expect(held).toMatchObject({ status: "running", leaseOwner: "w2", attempts: 2, result: null })
    expect(held.errors.length).toBe(1)

    expect(await complete("w2", job.id, "on time")).toEqual([job.id])
    expect(await get(job.id)).toMatchObject({ status: "succeeded", result: "on time" })
  })

  it("rescueExpired leaves live leases alone", async () => {
    const { job } = await running("w1", {}, 60_000)
    const rescued = await run(JobRepo.use((r) => r.rescueExpired()))
    expect(rescued.map((r) => r.id)).not.toContain(job.id)
    expect((await get(job.id)).status).toBe("running")
  })

  it("rescueExpired on the last attempt ends the job failed_permanent", async () => {
    const { queue, job } = await running("w1", { maxAttempts: 1 }, 50)
    const rescued = await waitFor("the expired lease to be rescued", async () =>
      (await run(JobRepo.use((r) => r.rescueExpired()))).find((r) => r.id === job.id)
    )
    expect(rescued.status).toBe("failed_permanent")
    const ended = await get(job.id)
    expect(ended.status).toBe("failed_permanent")
    expect(ended.finishedAt).toBeInstanceOf(Date)
    expect(ended.lastError).toContain("lease expired")
    expect(await claim("w2", queue)).toEqual([])
  })

  it("rescueExpired of a job whose cancel was requested ends it cancelled", async () => {
    const { queue, job } = await running("w1", {}, 50)
    await run(Queue.use((q) => q.cancel(job.id)))
    const rescued = await waitFor("the expired lease to be rescued", async () =>
      (await run(JobRepo.use((r) => r.rescueExpired()))).find((r) => r.id === job.id)
    )
    expect(rescued.status).toBe("cancelled")
    expect((await get(job.id)).finishedAt).toBeInstanceOf(Date)
    expect(await claim("w2", queue)).toEqual([])
  })

  it("renewLeases extends only the jobs this worker holds, with their cancel flags", async () => {
    const queue = uniqueQueue()
    for (let i = 0; i < 3; i++) await enqueue(queue)
    const [a, b] = await claim("w1", queue, 1_000, 2)
    const [c] = await claim("w2", queue, 1_000, 1)
    const done = await running("w1")
    await complete("w1", done.job.id)
    await run(Queue.use((q) => q.cancel(b!.id)))

    const renewed = await renew("w1", [a!.id, b!.id, c!.id, done.job.id], 120_000)
    expect([...renewed].sort((x, y) => (x.id < y.id ? -1 : 1))).toEqual(
      [
        { id: a!.id, cancelRequested: false, renewed: true },
        { id: b!.id, cancelRequested: true, renewed: true }
      ].sort((x, y) => (x.id < y.id ? -1 : 1))
    )
    const now = (await dbNow()).getTime()
    expect((await get(a!.id)).leaseExpiresAt!.getTime() - now).toBeGreaterThan(100_000)
    expect((await get(b!.id)).leaseExpiresAt!.getTime() - now).toBeGreaterThan(100_000)
    expect((await get(c!.id)).leaseExpiresAt!.getTime() - now).toBeLessThan(2_000)
    expect(await renew("w1", [], 120_000)).toEqual([])
  })
})

describe("release", () => {
  it("puts a running job back to queued without spending the attempt, claimable at once", async () => {
    const { queue, job } = await running("w1")
    expect(await run(JobRepo.use((r) => r.release("w2", [job.id])))).toEqual([])
    expect(await run(JobRepo.use((r) => r.release("w1", [job.id])))).toEqual([job.id])
    const released = await get(job.id)
    expect(released).toMatchObject({ status: "queued", attempts: 0, leaseOwner: null, leaseExpiresAt: null })
    const [again] = await claim("w2", queue)
    expect(again?.id).toBe(job.id)
    expect(again!.attempts).toBe(1)
  })

  it("a released retry goes back to retrying with its earlier attempts kept", async () => {
    const { queue, job } = await running("w1")
    await fail("w1", { id: job.id, error: "e1" })
    const [second] = await claim("w1", queue)
    expect(second!.attempts).toBe(2)
    expect(await run(JobRepo.use((r) => r.release("w1", [job.id])))).toEqual([job.id])
    expect(await get(job.id)).toMatchObject({ status: "retrying", attempts: 1 })
  })

  it("a released job whose cancel was requested ends cancelled", async () => {
    const { queue, job } = await running("w1")
    await run(Queue.use((q) => q.cancel(job.id)))
    expect(await run(JobRepo.use((r) => r.release("w1", [job.id])))).toEqual([job.id])
    const ended = await get(job.id)
    expect(ended.status).toBe("cancelled")
    expect(ended.finishedAt).toBeInstanceOf(Date)
    expect(await claim("w1", queue)).toEqual([])
  })
})
