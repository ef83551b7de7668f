import { describe, expect, it } from "bun:test"
import { Effect, Metric } from "effect"
import { SqlClient } from "effect/sql"
import { JobRepo } from "../src/queue/JobRepo.ts"
import { Queue } from "../src/queue/Queue.ts"
import * as QueueSettings from "../src/worker/QueueSettings.ts"
import { setupQueueTests } from "./support/runtime.ts"

const { run } = await setupQueueTests(import.meta.file)

/** Every node type of an EXPLAIN (FORMAT JSON) plan. */
const nodeTypes = (plan: { "Node Type": string; Plans?: ReadonlyArray<unknown> }): Array<string> => [
  plan["Node Type"],
  ...(plan.Plans ?? []).flatMap((p) => nodeTypes(p as typeof plan))
]

describe("queue depth sampling", () => {
  it("counts unfinished jobs by queue and status without reading the finished ones", async () => {
    await run(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`
          INSERT INTO jobs (queue, kind, payload, status, attempts, started_at, finished_at)
          SELECT 'depth', 'noop', '{}'::jsonb, 'succeeded', 1, now(), now() FROM generate_series(1, 5000)`
        const q = yield* Queue
        yield* q.enqueueMany(Array.from({ length: 6 }, () => ({ kind: "noop", payload: {}, queue: "depth" })))
        yield* JobRepo.use((r) => r.claim("depth-worker", 1, 30_000, ["depth"]))
        yield* sql`ANALYZE jobs`
      })
    )
    const { rows, plan } = await run(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const repo = yield* JobRepo
        const [text, params] = repo.depth.compile()
        const explained = yield* sql.unsafe<{
          "QUERY PLAN": Array<{ Plan: Parameters<typeof nodeTypes>[0] }>
        }>(`EXPLAIN (FORMAT JSON) ${text}`, params)
        return { rows: yield* repo.depth, plan: explained[0]!["QUERY PLAN"][0]!.Plan }
      })
    )
    expect(
      rows
        .map((r) => ({ queue: r.queue, status: r.status, count: r.count }))
        .sort((a, b) => a.status.localeCompare(b.status))
    ).toEqual([
      { queue: "depth", status: "queued", count: 5 },
      { queue: "depth", status: "running", count: 1 }
    ])
    expect(rows.find((r) => r.status === "queued")!.oldestReadySeconds).toBeGreaterThanOrEqual(0)
    expect(nodeTypes(plan)).not.toContain("Seq Scan")
  })
})

describe("queue settings gauges", () => {
  it("sample each steered queue's pause and limits, and read 0 once it is released", async () => {
    const gauge = (metric: Metric.Metric<number, Metric.GaugeState<number>>, queue: string) =>
      Metric.value(Metric.withAttributes(metric, { queue })).pipe(Effect.map((state) => Number(state.value)))
    const readings = (queue: string) =>
      Effect.all([
        gauge(QueueSettings.paused, queue),
        gauge(QueueSettings.concurrencyLimit, queue),
        gauge(QueueSettings.rateLimitMax, queue),
        gauge(QueueSettings.rateLimitWindow, queue)
      ])
    const [steered, released] = await run(
      Effect.gen(function* () {
        const q = yield* Queue
        const once = yield* QueueSettings.sample
        yield* q.pause("gauged")
        yield* q.setLimits("gauged", { concurrencyLimit: 8, rateLimit: { max: 100, per: 2000 } })
        yield* once
        const steered = yield* readings("gauged")
        yield* q.resume("gauged")
        yield* q.setLimits("gauged", { concurrencyLimit: null, rateLimit: null })
        yield* once
        return [steered, yield* readings("gauged")] as const
      })
    )
    expect(steered).toEqual([1, 8, 100, 2])
    expect(released).toEqual([0, 0, 0, 0])
  })
})
