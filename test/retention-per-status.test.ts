/**
 * Retention per status: the elected maintainer deletes succeeded, cancelled and failed jobs past their own
 * settings (falling back to JOB_RETENTION), in batches read from the finished-jobs index, never touching
 * unfinished jobs or jobs within their retention.
 */
import { afterAll, describe, expect, it } from "bun:test"
import { ConfigProvider, Duration, Effect, Layer, ManagedRuntime } from "effect"
import { SqlClient } from "effect/sql"
import { retentionOf, WorkerConfig } from "../src/Config.ts"
import * as Database from "../src/db/Database.ts"
import { demoKinds } from "../src/kinds/DemoKinds.ts"
import * as QueueLayer from "../src/queue/layer.ts"
import { RetentionRepo } from "../src/queue/RetentionRepo.ts"
import * as Worker from "../src/worker/index.ts"
import { pruneBatch } from "../src/worker/Maintenance.ts"
import { freshDatabase } from "./support/database.ts"
import { waitFor } from "./support/runtime.ts"

const db = await freshDatabase(import.meta.file)
// one connection: statistics read with pg_stat_force_next_flush() are this very session's
const runtime = ManagedRuntime.make(
  QueueLayer.layer(demoKinds).pipe(Layer.provideMerge(Database.layerUrl(db.url, { maxConnections: 1 })))
)
afterAll(async () => {
  await runtime.dispose()
  await db.drop()
})
const sql = <A extends object>(f: (sql: SqlClient.SqlClient) => Effect.Effect<ReadonlyArray<A>, unknown>) =>
  runtime.runPromise(Effect.flatMap(SqlClient.SqlClient, f) as Effect.Effect<ReadonlyArray<A>, never>)

/** `count` finished jobs of `status` that finished `hoursAgo` hours ago, in queue `queue`. */
const finished = (queue: string, status: string, hoursAgo: number, count: number) =>
  sql(
    (s) => s`
      INSERT INTO jobs (queue, kind, payload, status, attempts, started_at, finished_at)
      SELECT ${queue}, 'noop', '{}'::jsonb, ${status}, 1, now() - ${hoursAgo} * interval '1 hour',
             now() - ${hoursAgo} * interval '1 hour'
      FROM generate_series(1, ${count})`
  )

const left = async (queue: string) =>
  Object.fromEntries(
    (
      await sql<{ key: string; n: number }>(
        (s) => s`
          SELECT status || '@' || round(extract(epoch FROM now() - finished_at) / 3600)::int || 'h' AS key,
                 count(*)::int AS n
          FROM jobs WHERE queue = ${queue} AND finished_at IS NOT NULL GROUP BY 1`
      )
    ).map((r) => [r.key, r.n])
  )

describe("retention per status", () => {
  it("keeps each finished status for its own time, deleting in batches; unfinished jobs are never touched", async () => {
    const queue = "kept"
    for (const status of ["succeeded", "cancelled", "failed_permanent"]) {
      await finished(queue, status, 0.5, 3)
      await finished(queue, status, 3, status === "succeeded" ? pruneBatch * 2 + 7 : 3)
      await finished(queue, status, 30, 3)
    }
    await sql(
      (s) => s`
        INSERT INTO jobs (queue, kind, payload, created_at, run_at)
        VALUES (${queue}, 'noop', '{}'::jsonb, now() - interval '40 hours', now() + interval '1 hour')`
    )
    const worker = ManagedRuntime.make(
      Worker.layer({
        kinds: demoKinds,
        // successes 1 hour, cancellations 2 hours, failures fall back to JOB_RETENTION: 1 day
        settings: {
          queues: ["none"],
          retention: "1 day",
          retentionSucceeded: "1 hour",
          retentionCancelled: "2 hours"
        }
      }).pipe(Layer.provide(Database.layerUrl(db.url, { maxConnections: 2 })))
    )
    try {
      await worker.runPromise(Effect.void)
      const after = await waitFor("the maintainer to prune", async () => {
        const now = await left(queue)
        return now["failed_permanent@30h"] === undefined && now["succeeded@3h"] === undefined
          ? now
          : undefined
      })
      expect(after).toEqual({
        "succeeded@1h": 3,
        "cancelled@1h": 3,
        "failed_permanent@1h": 3,
        "failed_permanent@3h": 3
      })
      const [unfinished] = await sql<{ n: number }>(
        (s) => s`SELECT count(*)::int AS n FROM jobs WHERE queue = ${queue} AND status = 'queued'`
      )
      expect(unfinished!.n).toBe(1)
    } finally {
      await worker.dispose()
    }
  })

  it("a prune batch reads the finished-jobs index from its old end, never the table", async () => {
    await sql((s) => s`TRUNCATE jobs`)
    await finished("index", "succeeded", 48, 2000)
    await finished("index", "succeeded", 0.1, 50_000)
    await sql((s) => s`ANALYZE jobs`)
    const stats = () =>
      sql<{ seq: number; idx: number }>(
        (s) => s`
          SELECT (SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'jobs')::float8 AS seq,
                 (SELECT idx_tup_read FROM pg_stat_user_indexes WHERE indexrelname = 'jobs_finished_idx')::float8 AS idx`
      ).then((rows) => rows[0]!)
    await sql((s) => s`SELECT pg_stat_force_next_flush()`)
    const before = await stats()
    const deleted = await runtime.runPromise(
      RetentionRepo.use((repo) =>
        repo.pruneFinished("succeeded", Duration.toMillis(Duration.days(1)), pruneBatch)
      ).pipe(Effect.provide(RetentionRepo.layer))
    )
    await sql((s) => s`SELECT pg_stat_force_next_flush()`)
    const after = await stats()
    expect(deleted).toBe(pruneBatch)
    expect(after.seq - before.seq).toBe(0)
    // the batch and a few entries around it, not the 50,000 recent ones
    expect(after.idx - before.idx).toBeLessThan(pruneBatch * 1.1)
  })
})

describe("retention settings from the environment", () => {
  const retentionWith = (env: Record<string, string>) =>
    Effect.runPromise(
      WorkerConfig.use((c) => Effect.succeed(retentionOf(c))).pipe(
        Effect.provide(
          WorkerConfig.fromEnv.pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env))))
        )
      )
    )
  const hours = (d: Duration.Duration | undefined) => (d === undefined ? undefined : Duration.toHours(d))

  it("each status falls back to JOB_RETENTION; unset everywhere keeps everything", async () => {
    const mixed = await retentionWith({
      JOB_RETENTION: "1 day",
      JOB_RETENTION_FAILED: "30 days",
      JOB_RETENTION_SUCCEEDED: "0"
    })
    expect([hours(mixed.succeeded), hours(mixed.cancelled), hours(mixed.failed_permanent)]).toEqual([
      0, 24, 720
    ])
    const none = await retentionWith({})
    expect(none).toEqual({ succeeded: undefined, cancelled: undefined, failed_permanent: undefined })
  })

  it("refuses a value that is not a duration, naming the variable", async () => {
    await expect(retentionWith({ JOB_RETENTION_CANCELLED: "soonish" })).rejects.toThrow(
      /JOB_RETENTION_CANCELLED/
    )
  })
})
