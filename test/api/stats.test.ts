/**
 * `GET /stats` on known jobs: counts of unfinished jobs and the oldest ready one's age, finished counts as
 * the maintainer last recounted them, throughput per minute and wait/run percentiles by queue and kind.
 */
import { describe, expect, it } from "bun:test"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { QueueRepo } from "../../src/queue/QueueRepo.ts"
import { json, setupApiTests } from "../support/api.ts"

// every call computes afresh (the sharing is tested in admin.test.ts)
const api = await setupApiTests(import.meta.file, { statsInterval: "1 millis" })

interface Stats {
  queues: Array<{
    queue: string
    paused: boolean
    counts: Record<string, number | null>
    finishedCountedAt: string | null
    oldestReadyAgeMs: number | null
  }>
  throughput: Array<{ minute: string; succeeded: number; failed: number }>
  latency: Array<{ queue: string; kind: string; jobs: number } & Record<string, number>>
}
const stats = async () => {
  const response = await api.request("/stats")
  expect(response.status).toBe(200)
  return (await json(response)) as Stats
}

describe("GET /stats", () => {
  it("counts the jobs waiting in flows as blocked, as GET /queues/{name} does", async () => {
    const created = await api.postJson("/flows", {
      jobs: [
        { name: "a", kind: "noop", payload: {}, queue: "sq-flow", delayMs: 3_600_000 },
        { name: "b", kind: "noop", payload: {}, queue: "sq-flow", dependsOn: ["a"] },
        { name: "c", kind: "noop", payload: {}, queue: "sq-flow", dependsOn: ["a"] }
      ]
    })
    expect(created.status).toBe(201)
    const counted = (await stats()).queues.find((q) => q.queue === "sq-flow")!
    expect(counted.counts).toMatchObject({ queued: 1, blocked: 2, running: 0 })
    const queue = await json(await api.request("/queues/sq-flow"))
    expect(queue.counts).toMatchObject({ queued: 1, blocked: 2, running: 0 })
  })

  it("reports finished jobs' throughput and wait/run percentiles, and finished counts once recounted", async () => {
    // five jobs finished two minutes ago: waits of 100..500 ms, runs of 10..50 ms; the last one failed
    await api.run(
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) => sql`
          INSERT INTO jobs (queue, kind, payload, status, attempts, created_at, run_at, started_at, finished_at)
          SELECT 'sq', 'noop', '{}'::jsonb, CASE WHEN n = 5 THEN 'failed_permanent' ELSE 'succeeded' END, 1,
                 t, t, t + n * interval '100 ms', t + n * interval '100 ms' + n * interval '10 ms'
          FROM generate_series(1, 5) n,
               LATERAL (SELECT date_trunc('minute', now()) - interval '2 minutes' AS t) x`
      )
    )
    const response = await api.postJson("/jobs", { kind: "noop", payload: {}, queue: "sq", delayMs: 60_000 })
    expect(response.status).toBe(201)
    await api.postJson("/queues/idle/pause", { reason: "test" })

    const before = await stats()
    const sq = before.queues.find((q) => q.queue === "sq")!
    expect(sq.counts).toEqual({
      queued: 1,
      retrying: 0,
      running: 0,
      blocked: 0,
      succeeded: null,
      failed_permanent: null,
      cancelled: null
    })
    // the only queued job is not due yet: nothing is ready
    expect(sq.oldestReadyAgeMs).toBeNull()
    expect(before.queues.find((q) => q.queue === "idle")).toMatchObject({ paused: true })
    const minute = before.throughput.find((m) => m.succeeded + m.failed > 0)!
    expect({ succeeded: minute.succeeded, failed: minute.failed }).toEqual({ succeeded: 4, failed: 1 })
    const latency = before.latency.find((l) => l.queue === "sq" && l.kind === "noop")!
    expect(latency.jobs).toBe(5)
    expect(latency.waitP50Ms).toBeCloseTo(300, 3)
    expect(latency.waitP95Ms).toBeCloseTo(480, 3)
    expect(latency.runP50Ms).toBeCloseTo(30, 3)
    expect(latency.runP95Ms).toBeCloseTo(48, 3)

    await api.run(QueueRepo.use((repo) => repo.recountFinished))
    const after = (await stats()).queues.find((q) => q.queue === "sq")!
    expect(after.counts).toMatchObject({ succeeded: 4, failed_permanent: 1, cancelled: 0 })
    expect(after.finishedCountedAt).not.toBeNull()
  })
})
