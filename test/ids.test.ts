/**
 * Job ids: UUIDv7, time-ordered, and within one process strictly increasing, so a batch's ids keep its
 * order and keyset pages follow creation order. The database's own default (jobq_uuidv7) is a v7 too.
 */
import { describe, expect, it } from "bun:test"
import { Effect, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { JobId } from "../src/domain/Job.ts"
import { uuidv7 } from "../src/queue/ids.ts"
import { Queue } from "../src/queue/Queue.ts"
import { setupQueueTests } from "./support/runtime.ts"

const { run } = await setupQueueTests(import.meta.file)

const timestampOf = (id: string) => Number.parseInt(id.replace(/-/g, "").slice(0, 12), 16)
const isJobId = Schema.is(JobId)

describe("job ids", () => {
  it("are RFC 9562 version 7 UUIDs carrying the creation time", () => {
    const before = Date.now()
    const id = uuidv7()
    const after = Date.now()
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(isJobId(id)).toBe(true)
    expect(timestampOf(id)).toBeGreaterThanOrEqual(before)
    expect(timestampOf(id)).toBeLessThanOrEqual(after + 1)
  })

  it("strictly increase within a process, also within one millisecond and past the counter's range", () => {
    const ids = Array.from({ length: 20_000 }, () => uuidv7())
    for (let i = 1; i < ids.length; i++) {
      if (!(ids[i - 1]! < ids[i]!)) throw new Error(`id ${i} (${ids[i]}) does not sort after ${ids[i - 1]}`)
    }
    // more ids than one millisecond's counter holds, all at one fixed clock reading
    const now = Date.now() + 10_000
    const burst = Array.from({ length: 5_000 }, () => uuidv7(now))
    expect([...burst].sort()).toEqual(burst)
    expect(new Set(burst).size).toBe(burst.length)
    for (const id of burst) expect(isJobId(id)).toBe(true)
    // a clock that steps back does not break the order
    expect(uuidv7(now - 60_000) > burst[burst.length - 1]!).toBe(true)
  })

  it("a batch's ids follow the batch's order", async () => {
    const queue = "ids-batch"
    const results = await run(
      Queue.use((q) =>
        q.enqueueMany(Array.from({ length: 200 }, (_, i) => ({ kind: "sleep", payload: { ms: i }, queue })))
      )
    )
    const ids = results.map((r) => r.job.id)
    expect([...ids].sort()).toEqual(ids)
    const listed = await run(Queue.use((q) => q.list({ queue, limit: 500 })))
    expect(listed.jobs.map((j) => j.payload)).toEqual(Array.from({ length: 200 }, (_, i) => ({ ms: i })))
  })

  it("the database default is a version 7 UUID with the current time", async () => {
    const [row] = await run(
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) => sql<{ id: string; nowMs: number }>`
          SELECT jobq_uuidv7()::text AS id, (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS "nowMs"`
      )
    )
    expect(isJobId(row!.id)).toBe(true)
    expect(row!.id[14]).toBe("7")
    expect(Math.abs(timestampOf(row!.id) - row!.nowMs)).toBeLessThan(1000)
  })
})
