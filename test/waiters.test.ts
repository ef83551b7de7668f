/**
 * Waiting for jobs in the library (`Queue.awaitResult`, `Waiters`): jobs are finished from SQL here, at
 * chosen moments, so the race between a waiter's read and its subscription, and a notification lost while
 * the listener reconnects, are produced on purpose.
 */
import { describe, expect, it } from "bun:test"
import { Effect, Fiber } from "effect"
import { SqlClient } from "effect/sql"
import { Queue } from "../src/queue/Queue.ts"
import { Waiters } from "../src/queue/Waiters.ts"
import { queueRuntime, setupQueueTests, waitFor } from "./support/runtime.ts"

const { run, db } = await setupQueueTests(import.meta.file)

const enqueue = (queue = "nobody-serves-it") =>
  run(Queue.use((q) => q.enqueue({ kind: "noop", payload: {}, queue }))).then((e) => e.job)

/** Finishes a job as a worker's statement would, from another session. */
const finish = (id: string, status = "succeeded") =>
  run(
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) =>
        sql`UPDATE jobs SET status = ${status}, finished_at = now(), result = '{"by":"sql"}' WHERE id = ${id}`
    )
  )

const waiterCount = () => run(Waiters.use((w) => w.size))

/** The backend pid of this process's listener on jobq_finished, once it listens. */
const listener = () =>
  waitFor("the waiters' listener to LISTEN", () =>
    run(
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) =>
          sql<{ pid: number }>`
          SELECT pid FROM pg_stat_activity
          WHERE datname = current_database() AND query ILIKE 'LISTEN%jobq_finished%'`
      )
    ).then((rows) => (rows.length === 1 ? rows[0]!.pid : undefined))
  )

/** Starts the listener (the first wait does) and waits until it listens. */
const warmUp = async () => {
  const job = await enqueue()
  await run(Queue.use((q) => q.awaitResult(job.id, 0)))
  return listener()
}

describe("Queue.awaitResult", () => {
  it("answers at once for a job already terminal", async () => {
    const job = await enqueue()
    await finish(job.id)
    const started = performance.now()
    const outcome = await run(Queue.use((q) => q.awaitResult(job.id, "20 seconds")))
    expect(performance.now() - started).toBeLessThan(2_000)
    expect(outcome.finished).toBe(true)
    expect(outcome.job.status).toBe("succeeded")
    expect(await waiterCount()).toBe(0)
  })

  it("wakes when the job finishes, failed or cancelled too, and times out with the job as it stands", async () => {
    await warmUp()
    for (const status of ["succeeded", "failed_permanent", "cancelled"]) {
      const job = await enqueue()
      const waiting = run(Queue.use((q) => q.awaitResult(job.id, "20 seconds")))
      await waitFor("the waiter to register", async () => ((await waiterCount()) === 1 ? true : undefined))
      const finishedAt = performance.now()
      await finish(job.id, status)
      const outcome = await waiting
      expect(performance.now() - finishedAt).toBeLessThan(5_000)
      expect(outcome).toMatchObject({ finished: true, job: { id: job.id, status } })
    }
    const pending = await enqueue()
    const timedOut = await run(Queue.use((q) => q.awaitResult(pending.id, "150 millis")))
    expect(timedOut).toMatchObject({ finished: false, job: { id: pending.id, status: "queued" } })
    expect(await waiterCount()).toBe(0)
  })

  it("wakes a waiter that named its job in upper case (the database notifies lower-case ids)", async () => {
    await warmUp()
    const job = await enqueue()
    const waiting = run(Queue.use((q) => q.awaitResult(job.id.toUpperCase(), "10 seconds")))
    await waitFor("the waiter to register", async () => ((await waiterCount()) === 1 ? true : undefined))
    const finishedAt = performance.now()
    await finish(job.id)
    expect((await waiting).finished).toBe(true)
    expect(performance.now() - finishedAt).toBeLessThan(5_000)
  })

  it("catches a job that finishes between its subscription and its read", async () => {
    await warmUp()
    const job = await enqueue()
    const other = await enqueue()
    // The read returns the job as it was, and only then is it finished and its notification handled: a
    // second job finished after it, and waited for, wakes only once the first one's notification was read
    // (one fiber handles them in commit order). A waiter that subscribed after reading would miss it and
    // wait out its timeout.
    const staleRead = (id: string) =>
      Effect.gen(function* () {
        const stale = yield* Queue.use((q) => q.get(id))
        yield* Effect.promise(() => finish(id))
        const before = yield* Waiters.use((w) => w.size)
        const marker = yield* Effect.forkChild(Queue.use((q) => q.awaitResult(other.id, "20 seconds")))
        yield* Effect.promise(() =>
          waitFor("the marker's waiter", async () =>
            (await waiterCount()) === before + 1 ? true : undefined
          )
        )
        yield* Effect.promise(() => finish(other.id))
        expect((yield* Fiber.join(marker)).finished).toBe(true)
        return stale
      })
    const started = performance.now()
    const outcome = await run(Waiters.use((w) => w.awaitJob(job.id, "10 seconds", staleRead)))
    expect(outcome).toMatchObject({ finished: true, job: { status: "succeeded", result: { by: "sql" } } })
    expect(performance.now() - started).toBeLessThan(5_000)
  })

  it("reads every waited-for job again after the listener reconnects", async () => {
    const pid = await warmUp()
    const job = await enqueue()
    const waiting = run(Queue.use((q) => q.awaitResult(job.id, "20 seconds")))
    await waitFor("the waiter to register", async () => ((await waiterCount()) === 1 ? true : undefined))
    const started = performance.now()
    // the job finishes while nobody listens: its notification is lost
    await run(
      Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT pg_terminate_backend(${pid})`).pipe(
        Effect.asVoid
      )
    )
    await finish(job.id)
    const outcome = await waiting
    expect(outcome.finished).toBe(true)
    expect(performance.now() - started).toBeLessThan(10_000)
    expect(await listener()).not.toBe(pid)
  })

  it("unsubscribes a waiter that is interrupted or times out", async () => {
    const jobs = await Promise.all([enqueue(), enqueue(), enqueue()])
    const fibers = await Promise.all(
      jobs.map((job) => run(Effect.forkDetach(Queue.use((q) => q.awaitResult(job.id, "20 seconds")))))
    )
    await waitFor("three waiters", async () => ((await waiterCount()) === 3 ? true : undefined))
    await run(Fiber.interruptAll(fibers))
    expect(await waiterCount()).toBe(0)
    await run(Queue.use((q) => q.awaitResult(jobs[0]!.id, "50 millis")))
    expect(await waiterCount()).toBe(0)
  })

  it("ends at once a wait that starts after its layer closed (shutdown)", async () => {
    const job = await enqueue()
    const closing = queueRuntime(db.url)
    const waiters = await closing.runPromise(Waiters.use((w) => Effect.succeed(w)))
    await closing.dispose()
    const started = performance.now()
    const outcome = await Effect.runPromise(waiters.awaitJob(job.id, "20 seconds", () => Effect.succeed(job)))
    expect(outcome).toMatchObject({ finished: false, job: { id: job.id } })
    expect(performance.now() - started).toBeLessThan(5_000)
  })

  it("fails with JobNotFound for an unknown id, and enqueueAndWait waits for the job it made", async () => {
    const missing = await run(Effect.flip(Queue.use((q) => q.awaitResult(crypto.randomUUID(), "1 second"))))
    expect(missing._tag).toBe("JobNotFound")
    const outcome = await run(
      Queue.use((q) =>
        q.enqueueAndWait({ kind: "noop", payload: {}, queue: "nobody-serves-it" }, "100 millis")
      )
    )
    expect(outcome).toMatchObject({ created: true, finished: false, job: { status: "queued" } })
  })
})
