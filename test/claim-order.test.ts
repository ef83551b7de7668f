/**
 * A worker claims one statement at a time and starts its jobs in the order the claim read them: priority,
 * then run_at, then id (a second claim in flight beside the first was tried and dropped: two claims run side
 * by side in the database and either may hold the earlier jobs, docs/tradeoffs.md).
 */
import { describe, expect, it } from "bun:test"
import { Queue } from "../src/queue/Queue.ts"
import { started } from "./support/processes.ts"
import { waitFor } from "./support/runtime.ts"
import { setupTimedJobs } from "./support/timedJobs.ts"

const { run, sql, spawn, statusCounts, stopAll } = await setupTimedJobs(import.meta.file)

describe("a worker's start order", () => {
  it("a worker of concurrency 1 draining a backlog of short jobs starts them strictly in the queue's order", async () => {
    const queue = "claim-order"
    const count = 1_500
    // priorities in a scrambled order, so that any job started out of turn shows
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
