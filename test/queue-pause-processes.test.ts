/**
 * Pause and resume across real worker processes: a pause binds every worker within a second (claims at
 * once, jobs already claimed into buffers given back), running jobs finish, enqueueing goes on, other
 * queues keep flowing; a resume wakes idle workers by notification, not at their next poll.
 */
import { describe, expect, it } from "bun:test"
import { Queue } from "../src/queue/Queue.ts"
import { started } from "./support/processes.ts"
import { waitFor } from "./support/runtime.ts"
import { setupTimedJobs } from "./support/timedJobs.ts"

const { run, sql, enqueueTimed, statusCounts, spawn, stopAll } = await setupTimedJobs(import.meta.file)

const dbNow = async () => (await sql<{ at: Date }>((s) => s`SELECT clock_timestamp() AS at`))[0]!.at

describe("pause across worker processes", () => {
  it("binds three workers within 1 s: no claim after it commits, buffered jobs given back, running ones finish", async () => {
    const queue = "pause-me"
    const other = "keeps-going"
    // prefetch on purpose: each worker holds claimed jobs it has not started when the pause lands
    const env = { WORKER_QUEUES: `${queue},${other}`, WORKER_CONCURRENCY: "2", WORKER_PREFETCH: "8" }
    const three = [spawn("pause-a", env), spawn("pause-b", env), spawn("pause-c", env)]
    await Promise.all(three.map((w) => started(w)))
    // jobs of 300 ms, 2 running and up to 8 buffered per worker: working through a buffer takes over a second
    await enqueueTimed(queue, 60, 300)
    await waitFor("the three workers to hold jobs", async () => {
      const rows = await sql<{ n: number }>(
        (s) =>
          s`SELECT count(DISTINCT lease_owner)::int AS n FROM jobs WHERE queue = ${queue} AND status = 'running'`
      )
      return rows[0]!.n === 3 ? true : undefined
    })
    const outcome = await run(Queue.use((q) => q.pause(queue, { reason: "incident", by: "test" })))
    const pausedAt = await dbNow()
    expect(outcome.outcome).toBe("paused")

    // within a second nothing of the queue is held any more: running jobs finished, buffered ones given back
    await waitFor(
      "no job of the paused queue to be running",
      async () => ((await statusCounts(queue)).running === undefined ? true : undefined),
      { timeoutMs: 1_000 }
    )
    const late = await sql<{ claimed: number; began: number }>(
      (s) => s`
        SELECT count(*) FILTER (WHERE claimed_at > ${pausedAt})::int AS claimed,
               count(*) FILTER (WHERE began_at > ${pausedAt}::timestamptz + interval '1 second')::int AS began
        FROM job_spans WHERE queue = ${queue}`
    )
    expect(late[0]).toEqual({ claimed: 0, began: 0 })
    const unfinished = await sql<{ n: number; spent: number }>(
      (s) => s`
        SELECT count(*)::int AS n, count(*) FILTER (WHERE attempts > 0)::int AS spent
        FROM jobs WHERE queue = ${queue} AND status = 'queued'`
    )
    // jobs given back are queued again with their attempt refunded; none is lost
    expect(unfinished[0]!.n).toBeGreaterThan(0)
    expect(unfinished[0]!.spent).toBe(0)
    const counts = await statusCounts(queue)
    expect((counts.succeeded ?? 0) + (counts.queued ?? 0)).toBe(60)

    // enqueueing still works, and the other queue keeps flowing on the same workers
    expect((await enqueueTimed(queue, 2, 1))[0]!.job.status).toBe("queued")
    await enqueueTimed(other, 20, 1)
    await waitFor("the other queue to drain", async () =>
      (await statusCounts(other)).succeeded === 20 ? true : undefined
    )
    await Bun.sleep(300)
    expect((await statusCounts(queue)).running).toBeUndefined()
    const claimedSince = await sql<{ n: number }>(
      (s) => s`SELECT count(*)::int AS n FROM job_spans WHERE queue = ${queue} AND claimed_at > ${pausedAt}`
    )
    expect(claimedSince[0]!.n).toBe(0)

    await run(Queue.use((q) => q.resume(queue)))
    await waitFor(
      "the queue to drain after resume",
      async () => ((await statusCounts(queue)).succeeded === 62 ? true : undefined),
      { timeoutMs: 20_000 }
    )
    await stopAll()
  })

  it("a resume wakes idle workers at once by notification, not at their next poll or refresh", async () => {
    const queue = "wake-me"
    // polls and refreshes far apart: only the notification can wake them within the test's deadline
    const env = {
      WORKER_QUEUES: queue,
      WORKER_POLL_INTERVAL: "60 seconds",
      WORKER_QUEUE_REFRESH: "60 seconds"
    }
    const two = [spawn("wake-a", env), spawn("wake-b", env)]
    await Promise.all(two.map((w) => started(w)))
    await run(Queue.use((q) => q.pause(queue)))
    await enqueueTimed(queue, 4, 1)
    await Bun.sleep(200)
    expect((await statusCounts(queue)).queued).toBe(4)
    const resumedAt = await dbNow()
    await run(Queue.use((q) => q.resume(queue)))
    await waitFor(
      "the resumed queue's jobs to run",
      async () => ((await statusCounts(queue)).succeeded === 4 ? true : undefined),
      { timeoutMs: 3_000 }
    )
    const [row] = await sql<{ lag: number }>(
      (s) => s`
        SELECT extract(epoch FROM max(began_at) - ${resumedAt}::timestamptz)::float8 AS lag
        FROM job_spans WHERE queue = ${queue}`
    )
    expect(row!.lag).toBeLessThan(1.5)
    await stopAll()
  })
})
