/**
 * Idempotency keys and batch atomicity: concurrent enqueues with one key make one job and all callers get
 * it; a key reused with a different request is a conflict; enqueueMany writes all of a batch or none of it.
 */
import { describe, expect, it } from "bun:test"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import type { NewJob } from "../src/domain/Job.ts"
import { Queue } from "../src/queue/Queue.ts"
import { setupQueueTests } from "./support/runtime.ts"

const { run } = await setupQueueTests(import.meta.file)

let n = 0
const uniqueQueue = () => `idem-${++n}`
const uniqueKey = () => `key-${n}-${Math.random().toString(36).slice(2)}`

const countIn = (queue: string) =>
  run(
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) => sql<{ n: number }>`SELECT count(*)::int AS n FROM jobs WHERE queue = ${queue}`
    ).pipe(Effect.map((rows) => rows[0]!.n))
  )
const countWithKey = (key: string) =>
  run(
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) => sql<{ n: number }>`SELECT count(*)::int AS n FROM jobs WHERE idempotency_key = ${key}`
    ).pipe(Effect.map((rows) => rows[0]!.n))
  )

const enqueueConcurrently = (input: NewJob, callers: number) =>
  run(
    Effect.all(
      Array.from({ length: callers }, () => Queue.use((q) => q.enqueue(input))),
      { concurrency: callers }
    )
  )

describe("idempotent enqueue", () => {
  for (const callers of [10, 2]) {
    it(`${callers} concurrent enqueues with one key make one job; all get its id, one says created`, async () => {
      const queue = uniqueQueue()
      const key = uniqueKey()
      const results = await enqueueConcurrently(
        { kind: "sleep", payload: { ms: 5 }, queue, idempotencyKey: key },
        callers
      )
      expect(results.length).toBe(callers)
      expect(new Set(results.map((r) => r.job.id)).size).toBe(1)
      expect(results.filter((r) => r.created).length).toBe(1)
      for (const r of results) {
        expect(r.job.idempotencyKey).toBe(key)
        expect(r.job.payload).toEqual({ ms: 5 })
      }
      expect(await countIn(queue)).toBe(1)
      expect(await countWithKey(key)).toBe(1)
    })
  }

  it("a sequential repeat returns the same job, not created, even with payload keys in another order", async () => {
    const queue = uniqueQueue()
    const key = uniqueKey()
    const first = await run(
      Queue.use((q) =>
        q.enqueue({ kind: "cpu_hash", payload: { seed: "s", rounds: 2 }, queue, idempotencyKey: key })
      )
    )
    const again = await run(
      Queue.use((q) =>
        q.enqueue({ kind: "cpu_hash", payload: { rounds: 2, seed: "s" }, queue, idempotencyKey: key })
      )
    )
    expect(first.created).toBe(true)
    expect(again.created).toBe(false)
    expect(again.job).toEqual(first.job)
    expect(await countIn(queue)).toBe(1)
  })

  it("the same key with a different request is an IdempotencyConflict naming the key and the job", async () => {
    const queue = uniqueQueue()
    const key = uniqueKey()
    const first = await run(
      Queue.use((q) => q.enqueue({ kind: "sleep", payload: { ms: 1 }, queue, idempotencyKey: key }))
    )
    const variants: ReadonlyArray<NewJob> = [
      { kind: "sleep", payload: { ms: 2 }, queue, idempotencyKey: key },
      { kind: "sleep", payload: { ms: 1 }, queue: uniqueQueue(), idempotencyKey: key },
      { kind: "sleep", payload: { ms: 1 }, queue, priority: 3, idempotencyKey: key },
      { kind: "sleep", payload: { ms: 1 }, queue, maxAttempts: 9, idempotencyKey: key },
      { kind: "cpu_hash", payload: { seed: "x", rounds: 1 }, queue, idempotencyKey: key }
    ]
    for (const variant of variants) {
      const error = await run(Effect.flip(Queue.use((q) => q.enqueue(variant))))
      expect(error._tag).toBe("IdempotencyConflict")
      if (error._tag !== "IdempotencyConflict") continue
      expect(error.idempotencyKey).toBe(key)
      expect(error.jobId).toBe(first.job.id)
      expect(error.message).toContain(key)
    }
    expect(await countWithKey(key)).toBe(1)
    expect((await run(Queue.use((q) => q.get(first.job.id)))).payload).toEqual({ ms: 1 })
  })

  it("concurrent enqueues with one key and different bodies: one job, every other caller a conflict", async () => {
    const queue = uniqueQueue()
    const key = uniqueKey()
    const results = await run(
      Effect.all(
        Array.from({ length: 8 }, (_, i) =>
          Effect.result(
            Queue.use((q) => q.enqueue({ kind: "sleep", payload: { ms: i }, queue, idempotencyKey: key }))
          )
        ),
        { concurrency: 8 }
      )
    )
    const winners = results.filter((r) => r._tag === "Success")
    const losers = results.filter((r) => r._tag === "Failure")
    expect(winners.length).toBe(1)
    expect(losers.length).toBe(7)
    for (const l of losers) {
      if (l._tag === "Failure") {
        expect(l.failure._tag).toBe("IdempotencyConflict")
        if (winners[0]?._tag === "Success" && l.failure._tag === "IdempotencyConflict")
          expect(l.failure.jobId).toBe(winners[0].success.job.id)
      }
    }
    expect(await countIn(queue)).toBe(1)
  })

  it("different keys make different jobs; no key never deduplicates", async () => {
    const queue = uniqueQueue()
    const input = { kind: "noop", payload: {}, queue }
    const a = await run(Queue.use((q) => q.enqueue({ ...input, idempotencyKey: uniqueKey() })))
    const b = await run(Queue.use((q) => q.enqueue({ ...input, idempotencyKey: uniqueKey() })))
    const c = await run(Queue.use((q) => q.enqueue(input)))
    const d = await run(Queue.use((q) => q.enqueue(input)))
    expect([a, b, c, d].every((r) => r.created)).toBe(true)
    expect(new Set([a, b, c, d].map((r) => r.job.id)).size).toBe(4)
    expect(await countIn(queue)).toBe(4)
  })
})

describe("enqueueMany", () => {
  it("writes a valid batch, in order, in one go", async () => {
    const queue = uniqueQueue()
    const key = uniqueKey()
    const results = await run(
      Queue.use((q) =>
        q.enqueueMany([
          { kind: "noop", payload: {}, queue },
          { kind: "sleep", payload: { ms: 3 }, queue, idempotencyKey: key },
          { kind: "flaky", payload: { failTimes: 1 }, queue, priority: -1 }
        ])
      )
    )
    expect(results.map((r) => [r.job.kind, r.created])).toEqual([
      ["noop", true],
      ["sleep", true],
      ["flaky", true]
    ])
    expect(results[1]!.job.idempotencyKey).toBe(key)
    expect(results[2]!.job.priority).toBe(-1)
    expect(await countIn(queue)).toBe(3)
    expect(await run(Queue.use((q) => q.enqueueMany([])))).toEqual([])
  })

  it("one invalid item rejects the whole batch: nothing written, the error carries the item's index", async () => {
    const queue = uniqueQueue()
    const error = await run(
      Effect.flip(
        Queue.use((q) =>
          q.enqueueMany([
            { kind: "noop", payload: {}, queue },
            { kind: "sleep", payload: { ms: 1 }, queue },
            { kind: "sleep", payload: { ms: "soon" }, queue },
            { kind: "noop", payload: {}, queue }
          ])
        )
      )
    )
    expect(error._tag).toBe("InvalidPayload")
    if (error._tag === "InvalidPayload") {
      expect(error.index).toBe(2)
      expect(error.issues.map((i) => i.path)).toEqual([["ms"]])
    }
    const unknown = await run(
      Effect.flip(
        Queue.use((q) =>
          q.enqueueMany([
            { kind: "noop", payload: {}, queue },
            { kind: "mystery", payload: {}, queue }
          ])
        )
      )
    )
    expect(unknown._tag).toBe("UnknownJobKind")
    if (unknown._tag === "UnknownJobKind") expect(unknown.index).toBe(1)
    expect(await countIn(queue)).toBe(0)
  })

  it("a key repeated inside one batch with the same request makes one job, returned twice", async () => {
    const queue = uniqueQueue()
    const key = uniqueKey()
    const item = { kind: "sleep", payload: { ms: 7 }, queue, idempotencyKey: key }
    const results = await run(
      Queue.use((q) => q.enqueueMany([item, { kind: "noop", payload: {}, queue }, item]))
    )
    expect(results.length).toBe(3)
    expect(results[0]!.job.id).toBe(results[2]!.job.id)
    expect(results.map((r) => r.created)).toEqual([true, true, false])
    expect(await countWithKey(key)).toBe(1)
    expect(await countIn(queue)).toBe(2)
  })

  it("a key repeated inside one batch with different requests is refused naming both items, and nothing is written", async () => {
    const queue = uniqueQueue()
    const key = uniqueKey()
    const error = await run(
      Effect.flip(
        Queue.use((q) =>
          q.enqueueMany([
            { kind: "noop", payload: {}, queue },
            { kind: "sleep", payload: { ms: 1 }, queue, idempotencyKey: key },
            { kind: "sleep", payload: { ms: 2 }, queue, idempotencyKey: key }
          ])
        )
      )
    )
    // was an IdempotencyConflict naming the first item's job, which the rollback undid
    expect(error._tag).toBe("DuplicateIdempotencyKey")
    if (error._tag === "DuplicateIdempotencyKey") expect([error.firstIndex, error.index]).toEqual([1, 2])
    expect(await countIn(queue)).toBe(0)
    expect(await countWithKey(key)).toBe(0)
  })

  it("a key that clashes with an existing job rolls the whole batch back", async () => {
    const queue = uniqueQueue()
    const key = uniqueKey()
    const existing = await run(
      Queue.use((q) => q.enqueue({ kind: "sleep", payload: { ms: 1 }, queue, idempotencyKey: key }))
    )
    const error = await run(
      Effect.flip(
        Queue.use((q) =>
          q.enqueueMany([
            { kind: "noop", payload: {}, queue, idempotencyKey: uniqueKey() },
            { kind: "noop", payload: {}, queue },
            { kind: "sleep", payload: { ms: 999 }, queue, idempotencyKey: key }
          ])
        )
      )
    )
    expect(error._tag).toBe("IdempotencyConflict")
    if (error._tag === "IdempotencyConflict") expect(error.jobId).toBe(existing.job.id)
    expect(await countIn(queue)).toBe(1)
  })

  it("a batch repeating an existing job's key and request returns that job, not created", async () => {
    const queue = uniqueQueue()
    const key = uniqueKey()
    const item = { kind: "sleep", payload: { ms: 4 }, queue, idempotencyKey: key }
    const existing = await run(Queue.use((q) => q.enqueue(item)))
    const results = await run(Queue.use((q) => q.enqueueMany([{ kind: "noop", payload: {}, queue }, item])))
    expect(results.map((r) => r.created)).toEqual([true, false])
    expect(results[1]!.job).toEqual(existing.job)
    expect(await countIn(queue)).toBe(2)
  })

  it("concurrent batches sharing keys make each keyed job once", async () => {
    const queue = uniqueQueue()
    const keys = Array.from({ length: 5 }, uniqueKey)
    const batch = keys.map((key, i) => ({ kind: "sleep", payload: { ms: i }, queue, idempotencyKey: key }))
    const results = await run(
      Effect.all(
        Array.from({ length: 6 }, () => Queue.use((q) => q.enqueueMany(batch))),
        { concurrency: 6 }
      )
    )
    for (let i = 0; i < keys.length; i++) {
      expect(new Set(results.map((r) => r[i]!.job.id)).size).toBe(1)
      expect(results.filter((r) => r[i]!.created).length).toBe(1)
    }
    expect(await countIn(queue)).toBe(5)
  })

  it("concurrent batches sharing keys in opposite orders all succeed (no deadlock)", async () => {
    const queue = uniqueQueue()
    for (let round = 0; round < 5; round++) {
      const batch = Array.from({ length: 100 }, (_, i) => ({
        kind: "noop",
        payload: {},
        queue,
        idempotencyKey: `${queue}-r${round}-k${String(i).padStart(3, "0")}`
      }))
      const reversed = [...batch].reverse()
      const results = await run(
        Effect.all(
          [batch, reversed, batch, reversed].map((items) => Queue.use((q) => q.enqueueMany(items))),
          { concurrency: 4 }
        )
      )
      expect(results.flat().filter((r) => r.created).length).toBe(100)
    }
    expect(await countIn(queue)).toBe(500)
  })
})
