/**
 * The limited claim at the level of its statement (`QueueRepo.claimLimited`, `jobq_claim_limited`):
 * concurrent claimers on separate connections never lease more than the concurrency limit, an expired
 * lease counts no more, a rate limit holds over the window and says when it reopens, the rate log stays
 * bounded, and the plain claim never takes a limited queue's jobs.
 */
import { describe, expect, it } from "bun:test"
import { SQL } from "bun"
import { Effect, Layer, ManagedRuntime, Metric, Schema } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../src/db/Database.ts"
import { defineKind } from "../src/domain/JobKind.ts"
import { JobRepo } from "../src/queue/JobRepo.ts"
import { Queue } from "../src/queue/Queue.ts"
import { QueueRepo } from "../src/queue/QueueRepo.ts"
import * as Worker from "../src/worker/index.ts"
import * as Metrics from "../src/worker/WorkerMetrics.ts"
import { setupQueueTests, waitFor } from "./support/runtime.ts"

const { db, run } = await setupQueueTests(import.meta.file)

const enqueue = (queue: string, count: number) =>
  run(
    Queue.use((q) =>
      q.enqueueMany(Array.from({ length: count }, () => ({ kind: "noop", payload: {}, queue })))
    )
  )
const limit = (queue: string, change: Parameters<Queue["Service"]["setLimits"]>[1]) =>
  run(Queue.use((q) => q.setLimits(queue, change)))
const claimLimited = (worker: string, wanted: number, leaseMs = 30_000, queues?: ReadonlyArray<string>) =>
  run(QueueRepo.use((repo) => repo.claimLimited(worker, wanted, leaseMs, queues)))
const complete = (worker: string, ids: ReadonlyArray<string>) =>
  run(
    JobRepo.use((repo) =>
      repo.complete(
        worker,
        ids.map((id) => ({ id, result: null }))
      )
    )
  )
const sql = <A extends object>(f: (sql: SqlClient.SqlClient) => Effect.Effect<ReadonlyArray<A>, unknown>) =>
  run(Effect.flatMap(SqlClient.SqlClient, f) as Effect.Effect<ReadonlyArray<A>, never>)

describe("concurrency limit", () => {
  it("twelve claimers at once on their own connections lease no more than the limit between them", async () => {
    await enqueue("c-limited", 40)
    await limit("c-limited", { concurrencyLimit: 3 })
    const claims = await Promise.all(
      Array.from({ length: 12 }, (_, i) => claimLimited(`claimer-${i}`, 5, 30_000, ["c-limited"]))
    )
    const jobs = claims.flatMap((c) => c.jobs)
    expect(jobs.length).toBe(3)
    expect(new Set(jobs.map((j) => j.id)).size).toBe(3)
    // every claimer that came away with less than it asked for was told why
    for (const claim of claims) {
      expect(claim.heldBack).toEqual([{ queue: "c-limited", limit: "concurrency", reopensAt: null }])
    }
    // a completion frees a slot, and only one
    await complete(jobs[0]!.leaseOwner!, [jobs[0]!.id])
    const next = await claimLimited("claimer-x", 5, 30_000, ["c-limited"])
    expect(next.jobs.length).toBe(1)
  })

  it("holds when every claimer stalls between counting and committing (the claims are serialized)", async () => {
    await enqueue("c-stall", 40)
    // a rate limit too wide to bind: each claim then also writes the queue's rate log, after it counted
    // and claimed; a transaction holding the queue's row makes every claimer stall right there
    await limit("c-stall", { concurrencyLimit: 3, rateLimit: { max: 1000, per: 1000 } })
    const pg = new SQL({ url: db.url, max: 1 })
    const gate = await pg.reserve()
    try {
      await gate`BEGIN`
      await gate`SELECT 1 FROM queues WHERE name = 'c-stall' FOR UPDATE`
      const claims = Promise.all(
        Array.from({ length: 12 }, (_, i) => claimLimited(`stall-${i}`, 5, 30_000, ["c-stall"]))
      )
      await Bun.sleep(300)
      await gate`COMMIT`
      const jobs = (await claims).flatMap((c) => c.jobs)
      expect(jobs.length).toBe(3)
    } finally {
      gate.release()
      await pg.close()
    }
  })

  it("a job whose lease expired counts no more against the limit, rescued or not", async () => {
    await enqueue("c-expiry", 6)
    await limit("c-expiry", { concurrencyLimit: 2 })
    const first = await claimLimited("stalled", 5, 100, ["c-expiry"])
    expect(first.jobs.length).toBe(2)
    expect((await claimLimited("other", 5, 30_000, ["c-expiry"])).jobs.length).toBe(0)
    await Bun.sleep(150)
    // still `running` (nobody rescued them), but their leases expired
    const [row] = await sql<{ n: number }>(
      (s) => s`SELECT count(*)::int AS n FROM jobs WHERE queue = 'c-expiry' AND status = 'running'`
    )
    expect(row!.n).toBe(2)
    expect((await claimLimited("other", 5, 30_000, ["c-expiry"])).jobs.length).toBe(2)
  })

  it("the plain claims never take a limited queue's jobs; a paused limited queue is not claimed either", async () => {
    await enqueue("c-plain", 3)
    await limit("c-plain", { concurrencyLimit: 10 })
    const plain = await run(JobRepo.use((repo) => repo.claim("plain", 100, 30_000, ["c-plain"])))
    expect(plain).toEqual([])
    const byQueue = await run(JobRepo.use((repo) => repo.claimFromQueues("plain", 100, 30_000, ["c-plain"])))
    expect(byQueue).toEqual([])
    await run(Queue.use((q) => q.pause("c-plain")))
    expect((await claimLimited("limited", 10, 30_000, ["c-plain"])).jobs).toEqual([])
    await run(Queue.use((q) => q.resume("c-plain")))
    expect((await claimLimited("limited", 10, 30_000, ["c-plain"])).jobs.length).toBe(3)
  })
})

describe("rate limit", () => {
  it("starts at most max in the window, says when it reopens, and starts more once it has", async () => {
    await enqueue("r-limited", 12)
    await limit("r-limited", { rateLimit: { max: 5, per: 400 } })
    const first = await claimLimited("r", 10, 30_000, ["r-limited"])
    expect(first.jobs.length).toBe(5)
    const second = await claimLimited("r", 10, 30_000, ["r-limited"])
    expect(second.jobs.length).toBe(0)
    const cut = second.heldBack[0]!
    expect(cut.limit).toBe("rate")
    const startedAt = first.jobs[0]!.startedAt!.getTime()
    expect(cut.reopensAt!.getTime()).toBe(startedAt + 400)
    await Bun.sleep(Math.max(0, cut.reopensAt!.getTime() - Date.now()) + 30)
    const third = await claimLimited("r", 10, 30_000, ["r-limited"])
    expect(third.jobs.length).toBe(5)
    expect(third.jobs[0]!.startedAt!.getTime() - startedAt).toBeGreaterThanOrEqual(400)
  })

  it("keeps its log to 100 entries however many small claims it counts, and still never over-starts", async () => {
    await enqueue("r-log", 300)
    await limit("r-log", { rateLimit: { max: 250, per: 60_000 } })
    let claimed = 0
    for (let i = 0; i < 150; i++) claimed += (await claimLimited("r", 2, 30_000, ["r-log"])).jobs.length
    expect(claimed).toBe(250)
    const [row] = await sql<{ entries: number; total: number }>(
      (s) => s`
        SELECT cardinality(rate_log_at) AS entries, (SELECT sum(n)::int FROM unnest(rate_log_n) n) AS total
        FROM queues WHERE name = 'r-log'`
    )
    expect(row).toEqual({ entries: 100, total: 250 })
  })

  it("with both limits, the tighter one binds", async () => {
    await enqueue("both", 10)
    await limit("both", { concurrencyLimit: 2, rateLimit: { max: 5, per: 60_000 } })
    const first = await claimLimited("b", 10, 30_000, ["both"])
    expect([first.jobs.length, first.heldBack[0]?.limit]).toEqual([2, "concurrency"])
    await complete(
      "b",
      first.jobs.map((j) => j.id)
    )
    const second = await claimLimited("b", 10, 30_000, ["both"])
    await complete(
      "b",
      second.jobs.map((j) => j.id)
    )
    const third = await claimLimited("b", 10, 30_000, ["both"])
    expect([second.jobs.length, third.jobs.length, third.heldBack[0]?.limit]).toEqual([2, 1, "rate"])
  })
})

describe("a worker under a limit", () => {
  it("counts the claims its limit cut short in jobq_claims_held_back_total, by queue and limit", async () => {
    const blocker = defineKind({
      name: "blocker",
      payload: Schema.Struct({}),
      handler: () => Effect.never
    })
    await run(Queue.use((q) => q.setLimits("counted", { concurrencyLimit: 1 })))
    const worker = ManagedRuntime.make(
      Worker.layer({
        kinds: [blocker],
        settings: {
          queues: ["counted"],
          concurrency: 4,
          pollInterval: "50 millis",
          shutdownGrace: "10 millis"
        }
      }).pipe(Layer.provide(Database.layerUrl(db.url, { maxConnections: 4 })))
    )
    const heldBack = Metric.value(
      Metric.withAttributes(Metrics.claimsHeldBack, { queue: "counted", limit: "concurrency" })
    ).pipe(Effect.map((state) => state.count))
    try {
      const before = await worker.runPromise(heldBack)
      await sql(
        (s) =>
          s`INSERT INTO jobs (queue, kind, payload) SELECT 'counted', 'blocker', '{}'::jsonb FROM generate_series(1, 3)`
      )
      // one runs (forever); each poll after that is held back by the limit of 1
      const after = await waitFor("claims to be held back", async () => {
        const n = await worker.runPromise(heldBack)
        return n >= before + 2 ? n : undefined
      })
      expect(after).toBeGreaterThanOrEqual(before + 2)
      const [running] = await sql<{ n: number }>(
        (s) => s`SELECT count(*)::int AS n FROM jobs WHERE queue = 'counted' AND status = 'running'`
      )
      expect(running!.n).toBe(1)
    } finally {
      await worker.dispose()
    }
  })
})
