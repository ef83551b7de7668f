/**
 * Pause at the level of the claim statements, in one process on one connection: a paused queue's jobs are
 * never claimed whatever the caller believes, a pause joins the caller's transaction, the queue-by-queue
 * claim reads no paused backlog, and listing queues reads no finished job.
 */
import { afterAll, describe, expect, it } from "bun:test"
import { Effect, Layer, ManagedRuntime } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../src/db/Database.ts"
import * as Migrator from "../src/db/Migrator.ts"
import { demoKinds } from "../src/kinds/DemoKinds.ts"
import { JobRepo } from "../src/queue/JobRepo.ts"
import * as QueueLayer from "../src/queue/layer.ts"
import { Queue } from "../src/queue/Queue.ts"
import { QueueRepo } from "../src/queue/QueueRepo.ts"
import { freshDatabase } from "./support/database.ts"

const db = await freshDatabase(import.meta.file)
// one connection: statistics read with pg_stat_force_next_flush() are this very session's
const runtime = ManagedRuntime.make(
  QueueLayer.layer(demoKinds).pipe(Layer.provideMerge(Database.layerUrl(db.url, { maxConnections: 1 })))
)
afterAll(async () => {
  await runtime.dispose()
  await db.drop()
})
const run = <A, E>(effect: Effect.Effect<A, E, Queue | JobRepo | QueueRepo | SqlClient.SqlClient>) =>
  runtime.runPromise(effect)

const enqueue = (queue: string, count: number, priority = 0) =>
  run(
    Queue.use((q) =>
      q.enqueueMany(Array.from({ length: count }, () => ({ kind: "noop", payload: {}, queue, priority })))
    )
  )

const claim = (limit: number, queues?: ReadonlyArray<string>) =>
  run(JobRepo.use((repo) => repo.claim("tester", limit, 30_000, queues)))

const claimFromQueues = (limit: number, queues: ReadonlyArray<string>) =>
  run(JobRepo.use((repo) => repo.claimFromQueues("tester", limit, 30_000, queues)))

const sql = <A extends object>(f: (sql: SqlClient.SqlClient) => Effect.Effect<ReadonlyArray<A>, unknown>) =>
  run(Effect.flatMap(SqlClient.SqlClient, f) as Effect.Effect<ReadonlyArray<A>, never>)

/** Index and sequential reads of `jobs` (and its indexes) by this session while `body` runs. */
const readsDuring = async (body: () => Promise<unknown>) => {
  const snapshot = async () => {
    await sql((s) => s`SELECT pg_stat_force_next_flush()`)
    const [row] = await sql<{ seqScans: number; seqRows: number; indexRows: number }>(
      (s) => s`
        SELECT coalesce(seq_scan, 0)::float8 AS "seqScans", coalesce(seq_tup_read, 0)::float8 AS "seqRows",
               coalesce(idx_tup_fetch, 0)::float8 AS "indexRows"
        FROM pg_stat_user_tables WHERE relname = 'jobs'`
    )
    const indexes = await sql<{ name: string; read: number }>(
      (s) =>
        s`SELECT indexrelname AS name, idx_tup_read::float8 AS read FROM pg_stat_user_indexes WHERE relname = 'jobs'`
    )
    return { ...row!, indexes: new Map(indexes.map((i) => [i.name, i.read])) }
  }
  const before = await snapshot()
  await body()
  const after = await snapshot()
  const indexReads: Record<string, number> = {}
  for (const [name, read] of after.indexes) indexReads[name] = read - (before.indexes.get(name) ?? 0)
  return {
    seqScans: after.seqScans - before.seqScans,
    seqRows: after.seqRows - before.seqRows,
    indexReads
  }
}

describe("pause in the claim statement", () => {
  it("the plain claim and the served-queues claim never take a paused queue's jobs; after resume they do", async () => {
    await enqueue("p-paused", 5, -10)
    await enqueue("p-open", 3)
    await run(Queue.use((q) => q.pause("p-paused", { reason: "test" })))
    const first = await claim(100)
    expect(first.map((j) => j.queue).sort()).toEqual(["p-open", "p-open", "p-open"])
    expect(await claim(100, ["p-paused", "p-open"])).toEqual([])
    // enqueueing into a paused queue still works
    const more = await enqueue("p-paused", 1)
    expect(more[0]!.job.status).toBe("queued")
    await run(Queue.use((q) => q.resume("p-paused")))
    const after = await claim(100)
    expect(after.map((j) => j.queue)).toEqual(Array.from({ length: 6 }, () => "p-paused"))
  })

  it("a pause inside the caller's transaction binds claims only once it commits; rolled back, it never did", async () => {
    await enqueue("p-tx", 2)
    const paused = Effect.flatMap(Queue, (q) => q.pause("p-tx", { by: "ops" }))
    const rolledBack = await run(
      Effect.flatMap(SqlClient.SqlClient, (s) =>
        s.withTransaction(Effect.andThen(paused, Effect.fail("roll back" as const)))
      ).pipe(Effect.flip)
    )
    expect(rolledBack).toBe("roll back")
    expect((await run(Queue.use((q) => q.getQueue("p-tx")))).paused).toBe(false)
    await run(Effect.flatMap(SqlClient.SqlClient, (s) => s.withTransaction(paused)))
    expect(await claim(10, ["p-tx"])).toEqual([])
    const queue = await run(Queue.use((q) => q.getQueue("p-tx")))
    expect(queue.pause?.by).toBe("ops")
    await run(Queue.use((q) => q.resume("p-tx")))
    expect((await claim(10, ["p-tx"])).length).toBe(2)
  })

  it("the queue-by-queue claim keeps the global order, leaves paused queues out even when asked for them", async () => {
    await enqueue("q-a", 2, 5)
    await enqueue("q-b", 2, 1)
    await enqueue("q-c", 2, 3)
    await run(Queue.use((q) => q.pause("q-c")))
    const claimed = await claimFromQueues(3, ["q-a", "q-b", "q-c"])
    expect(claimed.map((j) => [j.queue, j.priority])).toEqual([
      ["q-b", 1],
      ["q-b", 1],
      ["q-a", 5]
    ])
    expect((await claimFromQueues(10, ["q-c"])).length).toBe(0)
    await run(Queue.use((q) => q.resume("q-c")))
    expect((await claimFromQueues(10, ["q-a", "q-c"])).map((j) => j.queue).sort()).toEqual([
      "q-a",
      "q-c",
      "q-c"
    ])
  })

  it("with a paused backlog ahead of them, the queue-by-queue claim reads only the queue asked for", async () => {
    await sql((s) => s`TRUNCATE jobs`)
    await sql(
      (s) => s`
        INSERT INTO jobs (queue, kind, payload, run_at)
        SELECT 'backlog', 'noop', '{}'::jsonb, now() - interval '1 hour' FROM generate_series(1, 20000)`
    )
    await run(Queue.use((q) => q.pause("backlog")))
    await enqueue("fresh", 10)
    await sql((s) => s`ANALYZE jobs`)
    // the plain claim reads the first jobs in claim order and leaves the paused ones: with a paused backlog
    // ahead it finds nothing (cheaply), which is why a worker that knows of a steered queue claims queue by
    // queue
    const plain = await readsDuring(async () => expect(await claim(5)).toEqual([]))
    expect(plain.seqScans).toBe(0)
    expect(plain.indexReads.jobs_ready_idx).toBeLessThan(50)
    const byQueue = await readsDuring(async () =>
      expect((await claimFromQueues(5, ["fresh"])).length).toBe(5)
    )
    expect(byQueue.seqScans).toBe(0)
    expect(byQueue.indexReads.jobs_ready_idx ?? 0).toBe(0)
    expect(byQueue.indexReads.jobs_queue_ready_idx).toBeLessThan(50)
  })
})

describe("the claim's cost", () => {
  it("queue by queue reads only the queue asked for, also when it holds most jobs (the planner's favourite case for the other index)", async () => {
    await sql((s) => s`TRUNCATE jobs`)
    await sql(
      (s) => s`
        INSERT INTO jobs (queue, kind, payload, run_at)
        SELECT 'held-back', 'noop', '{}'::jsonb, now() - interval '1 hour' FROM generate_series(1, 10000)`
    )
    await run(Queue.use((q) => q.pause("held-back")))
    await enqueue("most", 50_000)
    await sql((s) => s`ANALYZE jobs`)
    const reads = await readsDuring(async () =>
      expect((await claimFromQueues(500, ["most"])).length).toBe(500)
    )
    expect(reads.indexReads.jobs_ready_idx ?? 0).toBe(0)
    expect(reads.indexReads.jobs_queue_ready_idx).toBeLessThan(600)
    await run(Queue.use((q) => q.resume("held-back")))
  })

  it("leases a batch through the primary key: no sequential scan of the table, whatever its size", async () => {
    await sql((s) => s`TRUNCATE jobs`)
    await enqueue("big", 20_000)
    await sql((s) => s`ANALYZE jobs`)
    for (const claimOnce of [() => claim(500), () => claimFromQueues(500, ["big"])]) {
      const reads = await readsDuring(async () => expect((await claimOnce()).length).toBe(500))
      expect(reads.seqScans).toBe(0)
    }
  })
})

describe("listing queues", () => {
  it("reads no finished job: unfinished ones through their partial indexes, finished ones from the recount", async () => {
    await sql((s) => s`TRUNCATE jobs`)
    await sql(
      (s) => s`
        INSERT INTO jobs (queue, kind, payload, status, attempts, started_at, finished_at)
        SELECT 'done-' || (i % 3), 'noop', '{}'::jsonb, 'succeeded', 1, now(), now()
        FROM generate_series(1, 200000) AS i`
    )
    await enqueue("done-1", 4)
    await run(JobRepo.use((repo) => repo.claim("tester", 1, 30_000, ["done-1"])))
    await sql((s) => s`ANALYZE jobs`)
    let listed: ReadonlyArray<{ name: string; counts: Record<string, number | null> }> = []
    const reads = await readsDuring(async () => {
      listed = (await run(Queue.use((q) => q.listQueues()))).queues
    })
    expect(reads.seqScans).toBe(0)
    const total = Object.values(reads.indexReads).reduce((a, b) => a + b, 0)
    expect(total).toBeLessThan(100)
    const one = listed.find((q) => q.name === "done-1")!
    expect(one.counts).toEqual({
      queued: 3,
      retrying: 0,
      running: 1,
      blocked: 0,
      succeeded: null,
      failed_permanent: null,
      cancelled: null
    })
  })
})

describe("queue rows", () => {
  it("a queue row deleted by hand comes back: enqueueing sessions remember it, the maintainer's sweep does not", async () => {
    await enqueue("deleted-by-hand", 2)
    await sql((s) => s`DELETE FROM queues WHERE name = 'deleted-by-hand'`)
    // this session registered the queue before: it does not again
    await enqueue("deleted-by-hand", 1)
    await expect(run(Queue.use((q) => q.getQueue("deleted-by-hand")))).rejects.toThrow(/no queue named/)
    const registered = await run(QueueRepo.use((repo) => repo.registerReady))
    expect(registered).toContain("deleted-by-hand")
    expect((await run(Queue.use((q) => q.getQueue("deleted-by-hand")))).counts.queued).toBe(3)
    expect(await run(QueueRepo.use((repo) => repo.registerReady))).toEqual([])
  })
})

describe("deploys", () => {
  it("running the migrations again (a deploy) keeps every pause and limit", async () => {
    await run(Queue.use((q) => q.pause("kept", { reason: "incident 7", by: "ops" })))
    await run(
      Queue.use((q) => q.setLimits("kept", { concurrencyLimit: 4, rateLimit: { max: 10, per: 1000 } }))
    )
    const before = await run(Queue.use((q) => q.getQueue("kept")))
    const result = await run(Migrator.migrate())
    expect(result.applied).toEqual([])
    const after = await run(Queue.use((q) => q.getQueue("kept")))
    expect(after).toEqual(before)
    expect(after.pause?.reason).toBe("incident 7")
    expect([after.concurrencyLimit, after.rateLimit]).toEqual([4, { max: 10, per: 1000 }])
  })
})
