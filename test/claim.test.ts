import { describe, expect, it } from "bun:test"
import { Effect, Layer, ManagedRuntime } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../src/db/Database.ts"
import { JobRepo } from "../src/queue/JobRepo.ts"
import { Queue } from "../src/queue/Queue.ts"
import { setupQueueTests } from "./support/runtime.ts"

const { db, run } = await setupQueueTests(import.meta.file)

let n = 0
const uniqueQueue = () => `claim-${++n}`

const enqueueNoops = (queue: string, count: number, extra: { priority?: number; delayMs?: number } = {}) =>
  Effect.gen(function* () {
    const q = yield* Queue
    return yield* q.enqueueMany(
      Array.from({ length: count }, () => ({ kind: "noop", payload: {}, queue, ...extra }))
    )
  })

describe("claim", () => {
  it("marks claimed jobs running, counts the attempt and sets the lease", async () => {
    const queue = uniqueQueue()
    const [job] = await run(enqueueNoops(queue, 1))
    const claimed = await run(JobRepo.use((r) => r.claim("w1", 10, 30_000, [queue])))
    expect(claimed.map((j) => j.id)).toEqual([job!.job.id])
    const c = claimed[0]!
    expect(c.status).toBe("running")
    expect(c.attempts).toBe(1)
    expect(c.leaseOwner).toBe("w1")
    expect(c.leaseExpiresAt!.getTime() - Date.now()).toBeGreaterThan(25_000)
    expect(c.startedAt).toBeInstanceOf(Date)
    expect(await run(JobRepo.use((r) => r.claim("w2", 10, 30_000, [queue])))).toEqual([])
  })

  it("answers the job as a read of its row does, on a first attempt and after a failed one", async () => {
    // the plain claim sends the fields a first attempt leaves empty as one column (JobRepo `CompactClaimedRow`)
    const queue = uniqueQueue()
    const [plain] = await run(enqueueNoops(queue, 1))
    const keyed = await run(
      Queue.use((q) => q.enqueue({ kind: "noop", payload: {}, queue, idempotencyKey: `${queue}-key` }))
    )
    const fields = (job: object) => {
      const { status, leaseOwner, leaseExpiresAt, updatedAt, ...rest } = job as Record<string, unknown>
      const { parents, traceContext, recordStartFirst, ...same } = rest
      return same
    }
    const read = (id: string) => run(JobRepo.use((r) => r.get(id)))
    const first = await run(JobRepo.use((r) => r.claim("w1", 10, 30_000, [queue])))
    expect(first.map((j) => j.id).sort()).toEqual([plain!.job.id, keyed.job.id].sort())
    for (const job of first) {
      expect(fields(job)).toEqual(fields((await read(job.id))!))
      expect(job.parents).toBeNull()
      expect(job.recordStartFirst).toBe(false)
    }
    expect(first.find((j) => j.id === keyed.job.id)!.idempotencyKey).toBe(`${queue}-key`)
    await run(
      JobRepo.use((r) =>
        r.fail("w1", { id: plain!.job.id, error: "boom", retryDelayMs: 0, permanent: false })
      )
    )
    const [again] = await run(JobRepo.use((r) => r.claim("w2", 10, 30_000, [queue])))
    expect(again!.id).toBe(plain!.job.id)
    expect(again!.attempts).toBe(2)
    expect(again!.lastError).toBe("boom")
    expect(again!.errors).toHaveLength(1)
    expect(fields(again!)).toEqual(fields((await read(again!.id))!))
  })

  it("takes jobs by priority, then run_at, then id", async () => {
    const queue = uniqueQueue()
    const low = await run(enqueueNoops(queue, 2, { priority: 5 }))
    const high = await run(enqueueNoops(queue, 2, { priority: -5 }))
    const claimed = await run(JobRepo.use((r) => r.claim("w1", 3, 30_000, [queue])))
    const order = [...claimed].sort(
      (a, b) => a.priority - b.priority || a.runAt.getTime() - b.runAt.getTime() || (a.id < b.id ? -1 : 1)
    )
    expect(order.map((j) => j.id)).toEqual([high[0]!.job.id, high[1]!.job.id, low[0]!.job.id])
  })

  it("does not take jobs whose run_at is in the future", async () => {
    const queue = uniqueQueue()
    await run(enqueueNoops(queue, 1, { delayMs: 60_000 }))
    expect(await run(JobRepo.use((r) => r.claim("w1", 10, 30_000, [queue])))).toEqual([])
  })

  it("serves only the queues asked for", async () => {
    const a = uniqueQueue()
    const b = uniqueQueue()
    await run(enqueueNoops(a, 2))
    const [onlyB] = await run(enqueueNoops(b, 1))
    const claimed = await run(JobRepo.use((r) => r.claim("w1", 10, 30_000, [b])))
    expect(claimed.map((j) => j.id)).toEqual([onlyB!.job.id])
  })

  it("two concurrent claims never return the same job", async () => {
    const queue = uniqueQueue()
    await run(enqueueNoops(queue, 60))
    for (let round = 0; round < 5; round++) {
      const [a, b] = await run(
        Effect.all(
          [
            JobRepo.use((r) => r.claim("wa", 6, 30_000, [queue])),
            JobRepo.use((r) => r.claim("wb", 6, 30_000, [queue]))
          ],
          { concurrency: 2 }
        )
      )
      const ids = [...a, ...b].map((j) => j.id)
      expect(new Set(ids).size).toBe(ids.length)
      expect(ids.length).toBe(12)
    }
  })

  it("200 jobs claimed and completed by 8 concurrent claimers are each processed exactly once", async () => {
    const queue = uniqueQueue()
    await run(
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) => sql`CREATE TABLE IF NOT EXISTS processed_log (job_id uuid NOT NULL, worker text NOT NULL)`
      )
    )
    const jobs = await run(enqueueNoops(queue, 200))
    const claimer = (worker: string) =>
      Effect.gen(function* () {
        const repo = yield* JobRepo
        const sql = yield* SqlClient.SqlClient
        for (;;) {
          const claimed = yield* repo.claim(worker, 3, 30_000, [queue])
          if (claimed.length === 0) return
          for (const job of claimed) {
            // the log row and the completion commit together, or neither does
            yield* sql.withTransaction(
              Effect.gen(function* () {
                yield* sql`INSERT INTO processed_log (job_id, worker) VALUES (${job.id}, ${worker})`
                const done = yield* repo.complete(worker, [{ id: job.id, result: { by: worker } }])
                if (done.length !== 1) return yield* Effect.die(new Error(`lost lease on ${job.id}`))
              })
            )
          }
        }
      })
    await run(
      Effect.all(
        Array.from({ length: 8 }, (_, i) => claimer(`w${i}`)),
        { concurrency: 8 }
      )
    )
    const rows = await run(
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) =>
          sql<{ jobId: string; times: number }>`
          SELECT j.id AS "jobId", count(p.job_id)::int AS times
          FROM jobs j LEFT JOIN processed_log p ON p.job_id = j.id
          WHERE j.queue = ${queue} GROUP BY j.id`
      )
    )
    expect(rows.length).toBe(200)
    expect(rows.filter((r) => r.times !== 1)).toEqual([])
    const statuses = await run(
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) =>
          sql<{
            status: string
            n: number
          }>`SELECT status, count(*)::int AS n FROM jobs WHERE queue = ${queue} GROUP BY status`
      )
    )
    expect(statuses).toEqual([{ status: "succeeded", n: 200 }])
    expect(new Set(jobs.map((j) => j.job.id)).size).toBe(200)
  })

  it("never claims a cancelled job", async () => {
    const queue = uniqueQueue()
    const [job] = await run(enqueueNoops(queue, 1))
    await run(Queue.use((q) => q.cancel(job!.job.id)))
    expect(await run(JobRepo.use((r) => r.claim("w1", 10, 30_000, [queue])))).toEqual([])
  })
})

describe("the claim's asynchronous commit", () => {
  it("covers the claim's own transaction only: the connection is back to synchronous commits after it", async () => {
    const queue = uniqueQueue()
    await run(enqueueNoops(queue, 2))
    // one connection, so the statement after the claim runs where the claim ran
    const single = ManagedRuntime.make(
      JobRepo.layer.pipe(Layer.provideMerge(Database.layerUrl(db.url, { maxConnections: 1 })))
    )
    try {
      const [claimed, setting] = await single.runPromise(
        Effect.gen(function* () {
          const claimed = yield* JobRepo.use((r) => r.claim("w1", 10, 30_000, [queue]))
          const sql = yield* SqlClient.SqlClient
          const [row] = yield* sql<{
            setting: string
          }>`SELECT current_setting('synchronous_commit') AS setting`
          return [claimed, row!.setting] as const
        })
      )
      expect(claimed).toHaveLength(2)
      expect(setting).toBe("on")
    } finally {
      await single.dispose()
    }
  })
})
