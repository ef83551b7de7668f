/**
 * A worker's claims run one after the other in the database, two in flight pipelined on one connection (the
 * second starts once the first committed), and it starts its jobs in the order the claims read them:
 * priority, then run_at, then id. (Two claims side by side on two connections were tried and dropped: either
 * may hold the earlier jobs, docs/tradeoffs.md, "Claims in flight".)
 */
import { describe, expect, it } from "bun:test"
import { Effect } from "effect"
import { Queue } from "../src/queue/Queue.ts"
import { started } from "./support/processes.ts"
import { waitFor } from "./support/runtime.ts"
import { setupTimedJobs } from "./support/timedJobs.ts"

const { run, sql, spawn, statusCounts, stopAll } = await setupTimedJobs(import.meta.file)

const drainInOrder = async (queue: string, env: Record<string, string>) => {
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
  const worker = spawn(queue, { WORKER_QUEUES: queue, WORKER_CONCURRENCY: "1", ...env })
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
  const sorted = [...rows].sort((x, y) => x.priority - y.priority || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0))
  expect(rows.map((r) => `${r.priority}/${r.id}`)).toEqual(sorted.map((r) => `${r.priority}/${r.id}`))
}

describe("a worker's start order", () => {
  it("a worker of concurrency 1 draining a backlog of short jobs starts them strictly in the queue's order", async () => {
    await drainInOrder("claim-order", { WORKER_PREFETCH: "auto" })
  })

  it("the same with many small claims, two in flight at once on the claims' connection", async () => {
    // the jobs table locked against claims for 40 ms of every 80: a claim waits on the lock while the slots
    // go on with the buffer, so the next claim is sent before it returns (claims of 30-91 jobs, dozens of
    // them). Two claims side by side on two connections would run together once the lock goes, each skipping
    // the other's locked rows, and start jobs out of turn; pipelined on one, the second runs on what the
    // first left
    let locking = true
    const locker = (async () => {
      while (locking) {
        await sql((s) =>
          s.withTransaction(
            Effect.andThen(s`LOCK TABLE jobs IN EXCLUSIVE MODE`, Effect.as(Effect.sleep("40 millis"), []))
          )
        )
        await Bun.sleep(40)
      }
    })()
    try {
      await drainInOrder("claim-order-pipelined", { WORKER_PREFETCH: "90", WORKER_CLAIMS_IN_FLIGHT: "2" })
    } finally {
      locking = false
      await locker
    }
  })

  it("the same with one claim at a time", async () => {
    await drainInOrder("claim-order-single", { WORKER_PREFETCH: "90", WORKER_CLAIMS_IN_FLIGHT: "1" })
  })
})
