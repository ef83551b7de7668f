/**
 * Snooze: a handler ends its attempt and runs again later without spending it; `snoozes` counts, run_at
 * moves, and the bound (`maxSnoozes`) fails the job permanently with a clear error.
 */
import { describe, expect, it } from "bun:test"
import { Effect, Schema } from "effect"
import type { Job } from "../src/domain/Job.ts"
import { defineKind, maxSnoozes, snooze } from "../src/domain/JobKind.ts"
import { JobRepo } from "../src/queue/JobRepo.ts"
import { Queue } from "../src/queue/Queue.ts"
import { setupWorkerTests, waitFor } from "./support/runtime.ts"

/** Snoozes `times` times (counted by the job's own `snoozes`), then succeeds with its attempt number. */
const sleepy = defineKind({
  name: "sleepy",
  payload: Schema.Struct({ times: Schema.Int, ms: Schema.Int }),
  handler: ({ times, ms }, { job, attempt }) =>
    job.snoozes < times ? snooze(ms) : Effect.succeed({ attempt, snoozes: job.snoozes })
})
const kinds = [sleepy]
const { runtime } = await setupWorkerTests(import.meta.file, kinds, "jobq-snooze-test")

const enqueue = (payload: unknown, maxAttempts = 1) =>
  runtime.runPromise(Queue.use((q) => q.enqueue({ kind: "sleepy", payload, maxAttempts }))).then((e) => e.job)
const get = (id: string) => runtime.runPromise(Queue.use((q) => q.get(id)))
const settled = (id: string, status: Job["status"]) =>
  waitFor(`job ${id} to be ${status}`, async () => {
    const job = await get(id)
    return job.status === status ? job : undefined
  })

describe("snooze", () => {
  it("runs again without spending an attempt: one attempt allowed, three snoozes, then success", async () => {
    const job = await enqueue({ times: 3, ms: 0 })
    const done = await settled(job.id, "succeeded")
    expect(done.snoozes).toBe(3)
    expect(done.attempts).toBe(1)
    expect(done.result).toEqual({ attempt: 1, snoozes: 3 })
    expect(done.errors).toEqual([])
  })

  it("moves run_at by the duration and puts the job back queued", async () => {
    const job = await enqueue({ times: 1, ms: 60_000 })
    const snoozed = await waitFor("the snooze", async () => {
      const current = await get(job.id)
      return current.snoozes === 1 ? current : undefined
    })
    expect(snoozed.status).toBe("queued")
    expect(snoozed.attempts).toBe(0)
    expect(snoozed.leaseOwner).toBeNull()
    const delay = snoozed.runAt.getTime() - snoozed.updatedAt.getTime()
    expect(delay).toBeGreaterThanOrEqual(59_000)
    expect(delay).toBeLessThanOrEqual(60_000)
  })

  it(`fails the job permanently on snooze number ${maxSnoozes + 1}, saying why`, async () => {
    const job = await enqueue({ times: 1_000_000, ms: 0 })
    const failed = await settled(job.id, "failed_permanent")
    expect(failed.snoozes).toBe(maxSnoozes)
    expect(failed.attempts).toBe(1)
    expect(failed.lastError).toBe(`snoozed ${maxSnoozes} times: a job may snooze at most ${maxSnoozes} times`)
  })

  it("a retry starts the job afresh: its snoozes count from zero again", async () => {
    const job = await enqueue({ times: maxSnoozes + 5, ms: 0 })
    await settled(job.id, "failed_permanent")
    const retried = await runtime.runPromise(Queue.use((q) => q.retry(job.id)))
    expect(retried).toMatchObject({ status: "queued", attempts: 0, snoozes: 0, progress: null })
    // and, snoozing again from zero, it runs into the bound only after as many snoozes as the first time
    const failedAgain = await settled(job.id, "failed_permanent")
    expect(failedAgain.snoozes).toBe(maxSnoozes)
    expect(failedAgain.errors.length).toBe(2)
  })

  it("a worker that lost the lease cannot snooze the job", async () => {
    const job = await enqueue({ times: 0, ms: 0 })
    await settled(job.id, "succeeded")
    const after = await runtime.runPromise(JobRepo.use((r) => r.snooze("nobody", job.id, 1000, maxSnoozes)))
    expect(after).toBeUndefined()
    expect((await get(job.id)).snoozes).toBe(0)
  })
})
