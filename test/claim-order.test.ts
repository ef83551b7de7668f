/**
 * A worker keeps up to two claims in flight while its buffer runs low (the fetch loop's and the second
 * stream's, src/worker/WorkerPool.ts); they land in the order they were sent (src/worker/ClaimOrder.ts), so a
 * worker still starts its jobs in the queue's order: priority, then run_at, then id.
 */
import { describe, expect, it } from "bun:test"
import { Queue } from "../src/queue/Queue.ts"
import * as ClaimOrder from "../src/worker/ClaimOrder.ts"
import { started } from "./support/processes.ts"
import { waitFor } from "./support/runtime.ts"
import { setupTimedJobs } from "./support/timedJobs.ts"

const { run, sql, spawn, statusCounts, stopAll } = await setupTimedJobs(import.meta.file)

describe("claims in flight together", () => {
  it("land in the order they were sent, whatever order they come back in; a failed one lands nothing in its turn", () => {
    const order = ClaimOrder.make()
    const landed: Array<string> = []
    const [a, b, c, d] = [order.send(), order.send(), order.send(), order.send()]
    order.landed(b, () => landed.push("b"))
    order.landed(d, () => landed.push("d"))
    expect(landed).toEqual([])
    expect(order.pending()).toBe(4)
    order.landed(a, () => landed.push("a"))
    expect(landed).toEqual(["a", "b"])
    // c failed: nothing of its own, and d, waiting behind it, lands
    order.landed(c, () => {})
    expect(landed).toEqual(["a", "b", "d"])
    expect(order.pending()).toBe(0)
    const e = order.send()
    order.landed(e, () => landed.push("e"))
    expect(landed).toEqual(["a", "b", "d", "e"])
  })

  it("join the unstarted jobs in the queue's order: priority, then run_at, then id", () => {
    const at = (ms: number) => new Date(1_800_000_000_000 + ms)
    const job = (id: string, priority: number, ms = 0) => ({ id, priority, runAt: at(ms) })
    const ids = (jobs: ReadonlyArray<{ id: string }>) => jobs.map((j) => j.id)
    // a claim that follows the waiting jobs is appended to the same array
    const waiting = [job("a", 0), job("b", 1)]
    expect(ClaimOrder.mergeInOrder(waiting, [job("c", 1, 5), job("d", 2)])).toBe(waiting)
    expect(ids(waiting)).toEqual(["a", "b", "c", "d"])
    // one that ran beside an earlier claim and holds earlier jobs is merged in
    expect(
      ids(
        ClaimOrder.mergeInOrder(
          [job("e", 0, 10), job("g", 3)],
          [job("d", 0, 5), job("f", 0, 10), job("h", 3)]
        )
      )
    ).toEqual(["d", "e", "f", "g", "h"])
    expect(ClaimOrder.before(job("x", -1, 99), job("a", 0))).toBe(true)
    expect(ClaimOrder.before(job("b", 0, 1), job("a", 0, 1))).toBe(false)
  })

  it("a worker of concurrency 1 draining a backlog of short jobs starts them strictly in the queue's order", async () => {
    const queue = "claim-order"
    const count = 1_500
    // priorities in a scrambled order, so that any claim landing out of turn shows
    await run(
      Queue.use((q) =>
        q.enqueueMany(
          Array.from({ length: count }, (_, i) => ({
            kind: "timed",
            payload: { sleepMs: 0 },
            queue,
            priority: (i * 7) % 10
          }))
        )
      )
    )
    const worker = spawn("claim-order", {
      WORKER_QUEUES: queue,
      WORKER_CONCURRENCY: "1",
      WORKER_PREFETCH: "auto"
    })
    await started(worker)
    await waitFor(
      "the backlog to be done",
      async () => ((await statusCounts(queue)).succeeded === count ? true : undefined),
      { timeoutMs: 60_000 }
    )
    await stopAll()
    // the database's record: each job's priority and id in the order the handlers began
    const rows = await sql<{ priority: number; id: string }>(
      (s) => s`
        SELECT j.priority, j.id::text AS id FROM job_spans sp JOIN jobs j ON j.id = sp.job_id
        WHERE sp.queue = ${queue} ORDER BY sp.span_id`
    )
    expect(rows.length).toBe(count)
    const sorted = [...rows].sort(
      (x, y) => x.priority - y.priority || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0)
    )
    expect(rows.map((r) => `${r.priority}/${r.id}`)).toEqual(sorted.map((r) => `${r.priority}/${r.id}`))
  })
})
