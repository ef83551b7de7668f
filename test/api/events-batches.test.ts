/**
 * `GET /events` over batch rows (migrations/0012): while someone follows, the worker's claim and completion
 * statements write one `event_log` row each, and the API expands it into one event per job, each with its own
 * id (`<tx>-<id>.<n>`). Claims and completions run through `JobRepo` (and `FlowRepo.completeDeleting`), the
 * statements the worker runs.
 */
import { describe, expect, it } from "bun:test"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { FlowRepo } from "../../src/queue/FlowRepo.ts"
import { JobRepo } from "../../src/queue/JobRepo.ts"
import { Queue } from "../../src/queue/Queue.ts"
import { setupApiTests } from "../support/api.ts"
import { eventData, type SseMessage, sseReader } from "../support/sse.ts"

const { run, handler: api } = await setupApiTests(import.meta.file)

const enqueue = (queue: string, kind: string) =>
  run(Queue.use((q) => q.enqueue({ kind, payload: kind === "sleep" ? { ms: 1 } : {}, queue }))).then(
    (e) => e.job.id as string
  )

/** Claims every ready job of `queues` in one statement, as a worker does. */
const claim = (queues: ReadonlyArray<string>) =>
  run(JobRepo.use((r) => r.claim("batch-test", 100, 60_000, queues))).then((jobs) => jobs.map((j) => j.id))
/** Completes `ids` in one statement, as the worker's completer does. */
const complete = (ids: ReadonlyArray<string>) =>
  run(
    JobRepo.use((r) =>
      r.complete(
        "batch-test",
        ids.map((id) => ({ id, result: null }))
      )
    )
  )

const logRows = (type: string, job: string) =>
  run(
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) => sql<{ size: number; jobs: ReadonlyArray<string> | null }>`
        SELECT size, jobs FROM event_log
        WHERE type = ${type} AND (job_id = ${job} OR ${job}::uuid = ANY(jobs))`
    )
  )

const follow = async (query: string, headers: Record<string, string> = {}) => {
  const response = await api(new Request(`http://api.test/events${query}`, { headers }))
  expect(response.status).toBe(200)
  const reader = sseReader(response)
  const first = await reader.next()
  expect(first?.comments[0]).toStartWith("open ")
  return reader
}

const sorted = (ids: ReadonlyArray<string>) => [...ids].sort()
const summary = (m: SseMessage) => `${m.event} ${eventData(m).job}`

describe("GET /events over batch rows", () => {
  it("writes one row per claim and per completion, and sends one event per job with its own id", async () => {
    const stream = await follow("?queue=bt-a,bt-b")
    const jobs = [
      await enqueue("bt-a", "noop"),
      await enqueue("bt-b", "sleep"),
      await enqueue("bt-a", "sleep")
    ]
    const claimed = await claim(["bt-a", "bt-b"])
    expect(sorted(claimed)).toEqual(sorted(jobs))
    await complete(claimed)
    // the database's record: one row for the three `started`, one for the three `succeeded`
    for (const type of ["started", "succeeded"]) {
      const rows = await logRows(type, jobs[0]!)
      expect(rows.map((r) => r.size)).toEqual([3])
      expect(sorted([...rows[0]!.jobs!])).toEqual(sorted(jobs))
    }
    const events = await stream.events(9)
    expect(events.slice(0, 3).map(summary)).toEqual(jobs.map((j) => `enqueued ${j}`))
    expect(events.slice(3, 6).map(summary)).toEqual(claimed.map((j) => `started ${j}`))
    expect(events.slice(6).map(summary)).toEqual(claimed.map((j) => `succeeded ${j}`))
    // a batch's events: one row's id with the index in it, each its own; fields per job
    const started = events.slice(3, 6)
    const [row] = started[0]!.id!.split(".")
    expect(started.map((m) => m.id)).toEqual([`${row}.0`, `${row}.1`, `${row}.2`])
    for (const m of started) {
      const data = eventData(m)
      expect(data.id).toBe(m.id)
      expect(data.attempt).toBe(1)
      expect(data.queue).toBe(data.job === jobs[1] ? "bt-b" : "bt-a")
      expect(data.kind).toBe(data.job === jobs[0] ? "noop" : "sleep")
    }
    await stream.cancel()
  })

  it("filters by queue, kind, type and job inside a batch", async () => {
    const byQueue = await follow("?queue=bf-b&type=started,succeeded")
    const byKind = await follow("?kind=sleep&queue=bf-a,bf-b&type=succeeded")
    const a1 = await enqueue("bf-a", "noop")
    const b1 = await enqueue("bf-b", "noop")
    const a2 = await enqueue("bf-a", "sleep")
    const b2 = await enqueue("bf-b", "sleep")
    const byJob = await follow(`?job=${a2}`)
    const claimed = await claim(["bf-a", "bf-b"])
    expect(claimed).toHaveLength(4)
    await complete(claimed)
    const bs = claimed.filter((j) => j === b1 || j === b2)
    expect((await byQueue.events(4)).map(summary)).toEqual([
      ...bs.map((j) => `started ${j}`),
      ...bs.map((j) => `succeeded ${j}`)
    ])
    const sleeps = claimed.filter((j) => j === a2 || j === b2)
    expect((await byKind.events(2)).map(summary)).toEqual(sleeps.map((j) => `succeeded ${j}`))
    expect((await byJob.events(2)).map(summary)).toEqual([`started ${a2}`, `succeeded ${a2}`])
    expect(a1).toBeDefined()
    for (const r of [byQueue, byKind, byJob]) await r.cancel()
  })

  it("replays from an id inside a batch and across a batch's end with Last-Event-ID", async () => {
    const first = await follow("?queue=br")
    const jobs = [await enqueue("br", "noop"), await enqueue("br", "noop"), await enqueue("br", "noop")]
    const claimed = await claim(["br"])
    const seen = await first.events(5)
    await first.cancel()
    // the client saw the three enqueued and the first two started; the rest happens while it is away
    expect(seen.slice(3).map(summary)).toEqual(claimed.slice(0, 2).map((j) => `started ${j}`))
    await complete(claimed)
    const later = await enqueue("br", "noop")
    const again = await follow("?queue=br", { "last-event-id": seen.at(-1)!.id! })
    expect((await again.events(5)).map(summary)).toEqual([
      `started ${claimed[2]}`,
      ...claimed.map((j) => `succeeded ${j}`),
      `enqueued ${later}`
    ])
    await again.cancel()
    // from the last event of a batch: the next row on
    const startedAll = (await (await follow("?queue=br", { "last-event-id": seen[2]!.id! })).events(3)).map(
      (m) => m.id!
    )
    const fromEnd = await follow("?queue=br&type=succeeded,enqueued", { "last-event-id": startedAll[2]! })
    expect((await fromEnd.events(4)).map(summary)).toEqual([
      ...claimed.map((j) => `succeeded ${j}`),
      `enqueued ${later}`
    ])
    await fromEnd.cancel()
    expect(jobs).toHaveLength(3)
  })

  it("a completion that deletes (JOB_RETENTION=0) writes its `succeeded` as one row too", async () => {
    const stream = await follow("?queue=bd&type=succeeded")
    const jobs = [await enqueue("bd", "noop"), await enqueue("bd", "noop")]
    const claimed = await claim(["bd"])
    const held = await run(
      FlowRepo.use((r) =>
        r.completeDeleting(
          "batch-test",
          claimed.map((id) => ({ id, result: null }))
        )
      )
    )
    expect(sorted(held)).toEqual(sorted(jobs))
    expect((await logRows("succeeded", jobs[0]!)).map((r) => r.size)).toEqual([2])
    expect((await stream.events(2)).map(summary)).toEqual(held.map((j) => `succeeded ${j}`))
    await stream.cancel()
  })

  it("ends the batch with its statement: a later change in the same transaction is its row trigger's", async () => {
    const stream = await follow("?queue=bn")
    // a claim that finds nothing while the gate is open writes nothing
    expect(await claim(["bn-empty"])).toEqual([])
    const a = await enqueue("bn", "noop")
    const b = await enqueue("bn", "noop")
    const claimed = await claim(["bn"])
    expect(sorted(claimed)).toEqual(sorted([a, b]))
    await run(
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql.withTransaction(
          Effect.andThen(
            Effect.andThen(
              JobRepo.use((r) => r.complete("batch-test", [{ id: a, result: null }])),
              // and one that moves nothing: it opens a batch all the same, and must close it
              JobRepo.use((r) => r.claim("batch-test", 10, 60_000, ["bn-empty"]))
            ),
            sql`UPDATE jobs SET status = 'cancelled', finished_at = now() WHERE id = ${b}`
          )
        )
      )
    )
    expect((await stream.events(6)).map(summary)).toEqual([
      `enqueued ${a}`,
      `enqueued ${b}`,
      ...claimed.map((j) => `started ${j}`),
      `succeeded ${a}`,
      `cancelled ${b}`
    ])
    await stream.cancel()
  })
})
