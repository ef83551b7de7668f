/**
 * Queue limits across real worker processes. Each `timed` job records, with the database clock, when its
 * claim leased it and when its handler ended; a lease spans both, so these intervals bound what the limit
 * counts. Concurrency: at no instant do more than N of them overlap, over three workers, and the queue
 * still drains at about the pace N allows. Rate: no more than `max` start (are leased) in any window of
 * `per`, over three workers, and the queue starts again as each window reopens, not at the next poll.
 */
import { describe, expect, it } from "bun:test"
import { Queue } from "../src/queue/Queue.ts"
import { started } from "./support/processes.ts"
import { waitFor } from "./support/runtime.ts"
import { setupTimedJobs } from "./support/timedJobs.ts"

const { run, sql, enqueueTimed, spansOf, statusCounts, spawn, stopAll } = await setupTimedJobs(
  import.meta.file
)

/** The most intervals [from, to) open at one instant. */
const maxOverlap = (intervals: ReadonlyArray<readonly [number, number]>) => {
  const edges = intervals.flatMap(([from, to]) => [
    [from, 1],
    [to, -1]
  ])
  // at equal times an end comes before a start: [a, b) and [b, c) do not overlap
  edges.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!)
  let open = 0
  let most = 0
  for (const [, delta] of edges) {
    open += delta!
    most = Math.max(most, open)
  }
  return most
}

describe("concurrency limit across worker processes", () => {
  it("three workers never run more than N of the queue's jobs at once, and drain it at N's pace", async () => {
    const queue = "limited-4"
    const n = 4
    const jobs = 40
    const sleepMs = 150
    await run(Queue.use((q) => q.setLimits(queue, { concurrencyLimit: n })))
    // 2 slots each: no single worker can reach the limit alone, so the limit binds across processes
    const env = { WORKER_QUEUES: queue, WORKER_CONCURRENCY: "2" }
    const three = [spawn("lim-a", env), spawn("lim-b", env), spawn("lim-c", env)]
    await Promise.all(three.map((w) => started(w)))
    await enqueueTimed(queue, jobs, sleepMs)
    await waitFor(
      "the limited queue to drain",
      async () => ((await statusCounts(queue)).succeeded === jobs ? true : undefined),
      {
        timeoutMs: 20_000
      }
    )
    const spans = await spansOf(queue)
    expect(spans.length).toBe(jobs)
    // from the claim that leased each job to the end of its handler; the lease lasts longer still
    expect(maxOverlap(spans.map((s) => [s.claimed, s.ended] as const))).toBeLessThanOrEqual(n)
    // the limit was reached, over more than one process
    expect(maxOverlap(spans.map((s) => [s.began, s.ended] as const))).toBe(n)
    expect(new Set(spans.map((s) => s.worker)).size).toBeGreaterThan(1)
    // and the queue did not crawl: N at a time, sleepMs each, is the pace the limit allows
    const elapsed = Math.max(...spans.map((s) => s.ended)) - Math.min(...spans.map((s) => s.claimed))
    const ideal = (jobs / n) * sleepMs
    expect(elapsed).toBeLessThan(2 * ideal + 500)
    await stopAll()
  })
})

describe("rate limit across worker processes", () => {
  it("three workers start at most max in any window of per, and start again as each window reopens", async () => {
    const queue = "rate-5-per-500"
    const max = 5
    const per = 500
    const jobs = 25
    await run(Queue.use((q) => q.setLimits(queue, { rateLimit: { max, per } })))
    // polls far apart: only the timed wake-up at each window's reopening can keep the queue moving
    const env = { WORKER_QUEUES: queue, WORKER_CONCURRENCY: "4", WORKER_POLL_INTERVAL: "30 seconds" }
    const three = [spawn("rate-a", env), spawn("rate-b", env), spawn("rate-c", env)]
    await Promise.all(three.map((w) => started(w)))
    // jobs of 300 ms: a worker that holds 4 of a window's 5 cannot also take the fifth before the others,
    // which wake at the same reopening (with 10 ms jobs one fast worker sometimes took every window)
    await enqueueTimed(queue, jobs, 300)
    await waitFor(
      "the rate-limited queue to drain",
      async () => ((await statusCounts(queue)).succeeded === jobs ? true : undefined),
      { timeoutMs: 15_000 }
    )
    // the starts as the database stored them (microseconds), in order
    const starts = (
      await sql<{ at: number }>(
        (s) => s`
          SELECT extract(epoch FROM started_at)::float8 * 1000 AS at FROM jobs
          WHERE queue = ${queue} ORDER BY started_at`
      )
    ).map((r) => r.at)
    expect(starts.length).toBe(jobs)
    // any window of `per` holds at most `max` starts: the (max+1)-th start after any start is `per` later
    const crowded = starts.slice(max).filter((at, i) => at - starts[i]! < per)
    expect(crowded).toEqual([])
    // and it kept going: (jobs / max - 1) windows, plus the time a wake-up and a claim take
    const span = starts.at(-1)! - starts[0]!
    expect(span).toBeGreaterThanOrEqual((jobs / max - 1) * per)
    expect(span).toBeLessThan((jobs / max - 1) * per + 1_500)
    expect(new Set((await spansOf(queue)).map((s) => s.worker)).size).toBeGreaterThan(1)
    await stopAll()
  })
})
