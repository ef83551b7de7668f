/**
 * Unique jobs over a window: concurrent identical enqueues make one job, a slot frees when its job leaves
 * the counted states, periods bucket on runAt, named payload fields, batches, and invalid options.
 */
import { describe, expect, it } from "bun:test"
import { Effect, Exit } from "effect"
import { SqlClient } from "effect/sql"
import type { NewJob } from "../src/domain/Job.ts"
import { JobRepo } from "../src/queue/JobRepo.ts"
import { Queue } from "../src/queue/Queue.ts"
import { setupQueueTests } from "./support/runtime.ts"

const { run } = await setupQueueTests(import.meta.file)

let n = 0
const freshQueue = () => `uniq-${++n}`

const countIn = (queue: string) =>
  run(
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) => sql<{ n: number }>`SELECT count(*)::int AS n FROM jobs WHERE queue = ${queue}`
    ).pipe(Effect.map((rows) => rows[0]!.n))
  )

const enqueue = (input: NewJob) => run(Queue.use((q) => q.enqueue(input)))

describe("unique enqueue", () => {
  it("50 concurrent identical enqueues make one job; the others answer it as a duplicate", async () => {
    const queue = freshQueue()
    const input: NewJob = { kind: "sleep", payload: { ms: 5 }, queue, unique: { period: "1 hour" } }
    const results = await run(
      Effect.all(
        Array.from({ length: 50 }, () => Queue.use((q) => q.enqueue(input))),
        { concurrency: 50 }
      )
    )
    expect(new Set(results.map((r) => r.job.id)).size).toBe(1)
    expect(results.filter((r) => r.created).length).toBe(1)
    expect(results.filter((r) => r.duplicate).length).toBe(49)
    expect(await countIn(queue)).toBe(1)
  })

  it("a plain enqueue is never a duplicate, and unique ones ignore it", async () => {
    const queue = freshQueue()
    const plain = await enqueue({ kind: "sleep", payload: { ms: 1 }, queue })
    const first = await enqueue({ kind: "sleep", payload: { ms: 1 }, queue, unique: {} })
    const again = await enqueue({ kind: "sleep", payload: { ms: 1 }, queue })
    expect([plain.created, first.created, again.created]).toEqual([true, true, true])
    expect([plain.duplicate, first.duplicate, again.duplicate]).toEqual([false, false, false])
  })

  it("the slot frees when the job leaves the counted states; a retry into a taken slot is refused", async () => {
    const queue = freshQueue()
    const input: NewJob = { kind: "sleep", payload: { ms: 1 }, queue, unique: { by: ["kind", "queue"] } }
    const first = await enqueue(input)
    expect((await enqueue(input)).duplicate).toBe(true)
    await run(Queue.use((q) => q.cancel(first.job.id)))
    const second = await enqueue(input)
    expect(second.created).toBe(true)
    expect(second.job.id).not.toBe(first.job.id)
    const retried = await run(Effect.exit(Queue.use((q) => q.retry(first.job.id))))
    expect(Exit.isFailure(retried) && JSON.stringify(retried.cause)).toContain(
      "another job holds its unique slot"
    )
  })

  it("a job keeps its slot while it runs and frees it when it succeeds; counted states may add succeeded", async () => {
    const queue = freshQueue()
    const input: NewJob = { kind: "noop", payload: {}, queue, unique: {} }
    const kept: NewJob = {
      kind: "noop",
      payload: {},
      queue,
      unique: { states: ["queued", "retrying", "running", "succeeded"] }
    }
    const first = await enqueue(input)
    const keeper = await enqueue(kept)
    expect(keeper.created).toBe(true) // other states: another key
    const claimed = await run(JobRepo.use((repo) => repo.claim("w-unique", 10, 60_000, [queue])))
    expect(claimed.map((j) => j.id).sort()).toEqual([first.job.id, keeper.job.id].sort())
    expect((await enqueue(input)).duplicate).toBe(true)
    await run(
      JobRepo.use((repo) =>
        repo.complete(
          "w-unique",
          claimed.map((j) => ({ id: j.id, result: null }))
        )
      )
    )
    const after = await enqueue(input)
    expect(after.created).toBe(true)
    const keptAfter = await enqueue(kept)
    expect(keptAfter.duplicate).toBe(true)
    expect(keptAfter.job.id).toBe(keeper.job.id)
    expect(keptAfter.job.status).toBe("succeeded")
  })

  it("a period buckets on runAt: the same hour is a duplicate, the next hour is not", async () => {
    const queue = freshQueue()
    const at = (iso: string): NewJob => ({
      kind: "sleep",
      payload: { ms: 1 },
      queue,
      runAt: new Date(iso),
      unique: { period: "1 hour" }
    })
    expect((await enqueue(at("2030-01-01T10:05:00Z"))).created).toBe(true)
    expect((await enqueue(at("2030-01-01T10:55:00Z"))).duplicate).toBe(true)
    expect((await enqueue(at("2030-01-01T11:00:00Z"))).created).toBe(true)
    expect(await countIn(queue)).toBe(2)
  })

  it("named payload fields: other fields do not matter; whole payload does", async () => {
    const queue = freshQueue()
    const byField: NewJob["unique"] = { by: ["kind", "payload.seed"] }
    const a = await enqueue({ kind: "cpu_hash", payload: { seed: "x", rounds: 1 }, queue, unique: byField })
    const b = await enqueue({ kind: "cpu_hash", payload: { seed: "x", rounds: 2 }, queue, unique: byField })
    const c = await enqueue({ kind: "cpu_hash", payload: { seed: "y", rounds: 2 }, queue, unique: byField })
    expect([a.created, b.duplicate, c.created]).toEqual([true, true, true])
    expect(b.job.id).toBe(a.job.id)
    const whole = await enqueue({ kind: "cpu_hash", payload: { seed: "x", rounds: 2 }, queue, unique: {} })
    expect(whole.created).toBe(true)
  })

  it("a batch answers per item: duplicates within the batch and of earlier jobs, beside plain items", async () => {
    const queue = freshQueue()
    const earlier = await enqueue({ kind: "sleep", payload: { ms: 7 }, queue, unique: {} })
    const results = await run(
      Queue.use((q) =>
        q.enqueueMany([
          { kind: "sleep", payload: { ms: 7 }, queue, unique: {} },
          { kind: "sleep", payload: { ms: 8 }, queue, unique: {} },
          { kind: "sleep", payload: { ms: 8 }, queue, unique: {} },
          { kind: "sleep", payload: { ms: 8 }, queue }
        ])
      )
    )
    expect(results.map((r) => [r.created, r.duplicate])).toEqual([
      [false, true],
      [true, false],
      [false, true],
      [true, false]
    ])
    expect(results[0]!.job.id).toBe(earlier.job.id)
    expect(results[2]!.job.id).toBe(results[1]!.job.id)
    expect(await countIn(queue)).toBe(3)
  })

  it("an idempotency key is checked first; a unique duplicate with a new key answers the holder", async () => {
    const queue = freshQueue()
    const input: NewJob = {
      kind: "sleep",
      payload: { ms: 3 },
      queue,
      unique: {},
      idempotencyKey: `k-${queue}`
    }
    const first = await enqueue(input)
    const repeat = await enqueue(input)
    expect([repeat.created, repeat.duplicate]).toEqual([false, false])
    const otherKey = await enqueue({ ...input, idempotencyKey: `k2-${queue}` })
    expect([otherKey.created, otherKey.duplicate, otherKey.job.id]).toEqual([false, true, first.job.id])
  })

  it("invalid options are refused with their path", async () => {
    const refuse = async (unique: unknown) => {
      const exit = await run(
        Effect.exit(
          Queue.use((q) =>
            q.enqueue({ kind: "cpu_hash", payload: { seed: "s", rounds: 1 }, unique } as NewJob)
          )
        )
      )
      if (Exit.isSuccess(exit)) throw new Error("accepted")
      return JSON.parse(JSON.stringify(exit.cause)) as unknown
    }
    expect(JSON.stringify(await refuse({ by: ["kind", "payload.nope"] }))).toContain('"path":["by",1]')
    expect(JSON.stringify(await refuse({ by: ["color"] }))).toContain('"path":["by",0]')
    expect(JSON.stringify(await refuse({ period: "soon" }))).toContain('"path":["period"]')
    expect(JSON.stringify(await refuse({ period: "400 days" }))).toContain("366 days")
    expect(JSON.stringify(await refuse({ states: ["queued"] }))).toContain('"path":["states"]')
    expect(
      JSON.stringify(await refuse({ by: Array.from({ length: 9 }, (_, i) => `payload.f${i}`) }))
    ).toContain("at most 8 named payload fields")
  })
})
