/**
 * Cancel in every state, and retry of ended jobs. A queued or retrying job is cancelled at once; a running
 * one gets a cancel request its worker hears on `jobq_cancel`; a finished one is a conflict.
 */
import { describe, expect, it } from "bun:test"
import { Effect } from "effect"
import type { Job, NewJob } from "../src/domain/Job.ts"
import { JobRepo } from "../src/queue/JobRepo.ts"
import { Queue } from "../src/queue/Queue.ts"
import { notificationsDuring, sentinel } from "./support/notifications.ts"
import { setupQueueTests } from "./support/runtime.ts"

const { run } = await setupQueueTests(import.meta.file)

let n = 0
const uniqueQueue = () => `cancel-${++n}`

const enqueue = async (extra: Partial<NewJob> = {}) => {
  const queue = uniqueQueue()
  const { job } = await run(Queue.use((q) => q.enqueue({ kind: "noop", payload: {}, queue, ...extra })))
  return { queue, job }
}
const claim = (worker: string, queue: string) => run(JobRepo.use((r) => r.claim(worker, 10, 30_000, [queue])))
const running = async (extra: Partial<NewJob> = {}) => {
  const { queue, job } = await enqueue(extra)
  const [claimed] = await claim("w1", queue)
  expect(claimed?.id).toBe(job.id)
  return { queue, job: claimed! }
}
const get = (id: string) => run(Queue.use((q) => q.get(id)))
const cancel = (id: string) => run(Queue.use((q) => q.cancel(id)))
const cancelError = (id: string) => run(Effect.flip(Queue.use((q) => q.cancel(id))))
const retryError = (id: string) => run(Effect.flip(Queue.use((q) => q.retry(id))))

/** Jobs in each finished state. */
const succeeded = async () => {
  const { job } = await running()
  await run(JobRepo.use((r) => r.complete("w1", [{ id: job.id, result: 1 }])))
  return get(job.id)
}
const failedPermanent = async () => {
  const { job } = await running()
  await run(JobRepo.use((r) => r.fail("w1", { id: job.id, error: "no", retryDelayMs: 0, permanent: true })))
  return get(job.id)
}
const cancelled = async () => {
  const { job } = await enqueue()
  await cancel(job.id)
  return get(job.id)
}

describe("cancel", () => {
  it("a queued job is cancelled at once and never claimed", async () => {
    const { queue, job } = await enqueue()
    const { outcome, job: after } = await cancel(job.id)
    expect(outcome).toBe("cancelled")
    expect(after.status).toBe("cancelled")
    expect(after.finishedAt).toBeInstanceOf(Date)
    expect(after.cancelRequestedAt).toBeInstanceOf(Date)
    expect((await get(job.id)).status).toBe("cancelled")
    expect(await claim("w1", queue)).toEqual([])
  })

  it("a retrying job is cancelled at once and its retry never runs", async () => {
    const { queue, job } = await running()
    const failed = await run(
      JobRepo.use((r) => r.fail("w1", { id: job.id, error: "e", retryDelayMs: 0, permanent: false }))
    )
    expect(failed?.status).toBe("retrying")
    const { outcome, job: after } = await cancel(job.id)
    expect(outcome).toBe("cancelled")
    expect(after.status).toBe("cancelled")
    expect(after.attempts).toBe(1)
    expect(await claim("w1", queue)).toEqual([])
  })

  it("a running job gets a cancel request: it stays running and its worker is notified", async () => {
    const { job } = await running()
    const { result, seen } = await run(
      notificationsDuring(
        "jobq_cancel",
        Queue.use((q) => q.cancel(job.id)),
        (payload) => payload === job.id
      )
    )
    expect(seen).toEqual([job.id])
    expect(result.outcome).toBe("cancel_requested")
    expect(result.job.status).toBe("running")
    expect(result.job.cancelRequestedAt).toBeInstanceOf(Date)
    expect(result.job.finishedAt).toBeNull()
    const current = await get(job.id)
    expect(current).toMatchObject({ status: "running", leaseOwner: "w1" })

    // the worker, having interrupted the handler, settles it
    expect(await run(JobRepo.use((r) => r.settleCancelled("w2", job.id)))).toBe(false)
    expect(await run(JobRepo.use((r) => r.settleCancelled("w1", job.id)))).toBe(true)
    const ended = await get(job.id)
    expect(ended).toMatchObject({ status: "cancelled", leaseOwner: null, leaseExpiresAt: null })
    expect(ended.finishedAt).toBeInstanceOf(Date)
  })

  it("a second cancel of a running job keeps the first request and notifies no one again", async () => {
    const { job } = await running()
    const { result, seen } = await run(
      notificationsDuring(
        "jobq_cancel",
        Effect.gen(function* () {
          const q = yield* Queue
          const first = yield* q.cancel(job.id)
          const second = yield* q.cancel(job.id)
          yield* sentinel("jobq_cancel", "sentinel")
          return [first, second] as const
        }),
        (payload) => payload === "sentinel"
      )
    )
    expect(seen).toEqual([job.id, "sentinel"])
    const [first, second] = result
    expect(second.outcome).toBe("cancel_requested")
    expect(second.job.cancelRequestedAt).toEqual(first.job.cancelRequestedAt)
  })

  it("cancelling a queued job sends no cancel notification (there is no worker to tell)", async () => {
    const { job } = await enqueue()
    const { seen } = await run(
      notificationsDuring(
        "jobq_cancel",
        Effect.andThen(
          Queue.use((q) => q.cancel(job.id)),
          sentinel("jobq_cancel", "sentinel")
        ),
        (payload) => payload === "sentinel"
      )
    )
    expect(seen).toEqual(["sentinel"])
  })

  const terminal: ReadonlyArray<[string, () => Promise<Job>]> = [
    ["succeeded", succeeded],
    ["failed_permanent", failedPermanent],
    ["cancelled", cancelled]
  ]
  for (const [status, make] of terminal) {
    it(`a ${status} job cannot be cancelled: JobStateConflict with its status, job unchanged`, async () => {
      const job = await make()
      expect(job.status).toBe(status as Job["status"])
      const error = await cancelError(job.id)
      expect(error._tag).toBe("JobStateConflict")
      if (error._tag !== "JobStateConflict") return
      expect(error.id).toBe(job.id)
      expect(error.status).toBe(status as Job["status"])
      expect(error.message).toContain(status)
      expect(await get(job.id)).toEqual(job)
    })
  }

  it("an unknown id is JobNotFound", async () => {
    const id = "01900000-0000-7000-8000-000000000000"
    const error = await cancelError(id)
    expect(error._tag).toBe("JobNotFound")
    if (error._tag === "JobNotFound") expect(error.id).toBe(id)
  })
})

describe("retry", () => {
  it("a failed_permanent job goes back to queued with fresh attempts, and is claimed again", async () => {
    const job = await failedPermanent()
    const retried = await run(Queue.use((q) => q.retry(job.id)))
    expect(retried).toMatchObject({
      id: job.id,
      status: "queued",
      attempts: 0,
      finishedAt: null,
      startedAt: null
    })
    expect(retried.errors.length).toBe(1) // history is kept
    expect(retried).toEqual(await get(job.id))
    const [again] = await claim("w2", job.queue)
    expect(again?.id).toBe(job.id)
    expect(again!.attempts).toBe(1)
  })

  it("a cancelled job goes back to queued with its cancel request cleared", async () => {
    const { job } = await running()
    await cancel(job.id)
    await run(JobRepo.use((r) => r.settleCancelled("w1", job.id)))
    expect((await get(job.id)).status).toBe("cancelled")
    const retried = await run(Queue.use((q) => q.retry(job.id)))
    expect(retried).toMatchObject({ status: "queued", attempts: 0, cancelRequestedAt: null })
    const [again] = await claim("w2", job.queue)
    expect(again?.id).toBe(job.id)
    // a fresh run is not born cancelled
    expect(
      await run(
        JobRepo.use((r) => r.fail("w2", { id: job.id, error: "e", retryDelayMs: 0, permanent: false }))
      )
    ).toMatchObject({ status: "retrying" })
  })

  it("a queued, running or succeeded job cannot be retried: JobStateConflict", async () => {
    const queued = (await enqueue()).job
    const runningJob = (await running()).job
    const done = await succeeded()
    for (const [job, status] of [
      [queued, "queued"],
      [runningJob, "running"],
      [done, "succeeded"]
    ] as const) {
      const error = await retryError(job.id)
      expect(error._tag).toBe("JobStateConflict")
      if (error._tag === "JobStateConflict") expect(error.status).toBe(status)
      expect((await get(job.id)).status).toBe(status)
    }
  })

  it("an unknown id is JobNotFound", async () => {
    expect((await retryError("01900000-0000-7000-8000-000000000001"))._tag).toBe("JobNotFound")
  })
})

describe("malformed ids", () => {
  it("get, cancel and retry of an id that is not a UUID are JobNotFound, never a database error", async () => {
    for (const id of ["nope", "../../etc/passwd", "'; DROP TABLE jobs; --", ""]) {
      expect((await run(Effect.flip(Queue.use((q) => q.get(id)))))._tag).toBe("JobNotFound")
      expect((await cancelError(id))._tag).toBe("JobNotFound")
      expect((await retryError(id))._tag).toBe("JobNotFound")
    }
  })

  it("an idempotency key containing NUL is rejected by its schema", async () => {
    const { IdempotencyKey } = await import("../src/domain/Job.ts")
    const { Schema } = await import("effect")
    expect(Schema.is(IdempotencyKey)("key\u0000x")).toBe(false)
    expect(Schema.is(IdempotencyKey)("key-x")).toBe(true)
  })
})
