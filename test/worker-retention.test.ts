import { afterAll, describe, expect, it } from "bun:test"
import { ConfigProvider, Duration, Effect, Layer, ManagedRuntime, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { WorkerConfig } from "../src/Config.ts"
import * as Database from "../src/db/Database.ts"
import { defineKind } from "../src/domain/JobKind.ts"
import * as QueueLayer from "../src/queue/layer.ts"
import { Queue } from "../src/queue/Queue.ts"
import * as Worker from "../src/worker/index.ts"
import { freshDatabase } from "./support/database.ts"
import { waitFor } from "./support/runtime.ts"

const ran = new Set<string>()
const record = defineKind({
  name: "record",
  payload: Schema.Struct({}),
  handler: (_, { job }) => Effect.sync(() => ran.add(job.id)).pipe(Effect.as({ kept: "nowhere" }))
})

const kinds = [record]
const db = await freshDatabase(import.meta.file)
const runtime = ManagedRuntime.make(
  Layer.mergeAll(
    Worker.layer({ kinds, settings: { concurrency: 4, retention: 0 } }),
    QueueLayer.layer(kinds)
  ).pipe(Layer.provideMerge(Database.layerUrl(db.url, { applicationName: "jobq-retention-test" })))
)
afterAll(async () => {
  await runtime.dispose()
  await db.drop()
})

const rowsLeft = (ids: ReadonlyArray<string>) =>
  runtime.runPromise(
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) => sql<{ n: number }>`SELECT count(*)::int AS n FROM jobs WHERE id = ANY(${ids}::uuid[])`
    )
  )

describe("JOB_RETENTION=0", () => {
  it("deletes each succeeded job in the statement that completes it, after its handler ran", async () => {
    const jobs = await runtime.runPromise(
      Queue.use((q) => q.enqueueMany(Array.from({ length: 50 }, () => ({ kind: "record", payload: {} }))))
    )
    const ids = jobs.map(({ job }) => job.id)
    await waitFor("every succeeded job to be deleted", async () =>
      (await rowsLeft(ids))[0]?.n === 0 ? true : undefined
    )
    expect(ids.filter((id) => !ran.has(id))).toEqual([])
  })
})

describe("JOB_RETENTION > 0", () => {
  it("deletes finished jobs older than the retention; keeps younger finished ones and every unfinished one", async () => {
    const pruneDb = await freshDatabase(`${import.meta.file}-prune`)
    const database = Database.layerUrl(pruneDb.url, { applicationName: "jobq-prune-test" })
    const queue = ManagedRuntime.make(QueueLayer.layer(kinds).pipe(Layer.provideMerge(database)))
    try {
      const sql = <A extends object>(
        f: (sql: SqlClient.SqlClient) => Effect.Effect<ReadonlyArray<A>, unknown>
      ) => queue.runPromise(Effect.flatMap(SqlClient.SqlClient, f) as Effect.Effect<ReadonlyArray<A>, never>)
      // due in an hour: no worker claims them; their states and times are set below
      const jobs = await queue.runPromise(
        Queue.use((q) =>
          q.enqueueMany(
            Array.from({ length: 10 }, () => ({ kind: "record", payload: {}, delayMs: 3_600_000 }))
          )
        )
      )
      const ids = jobs.map(({ job }) => job.id as string)
      const arranged: Array<[string, string, string | null, string]> = [
        // [label, status, finished this long ago, lease]
        ["old succeeded", "succeeded", "2 hours", "none"],
        ["old failed", "failed_permanent", "2 hours", "none"],
        ["old cancelled", "cancelled", "2 hours", "none"],
        ["young succeeded", "succeeded", "50 minutes", "none"],
        ["young failed", "failed_permanent", "50 minutes", "none"],
        ["young cancelled", "cancelled", "50 minutes", "none"],
        ["old queued", "queued", null, "none"],
        ["old retrying", "retrying", null, "none"],
        ["old running", "running", null, "held"],
        ["old running, cancel requested", "running", null, "held"]
      ]
      for (const [i, [, status, finishedAgo, lease]] of arranged.entries()) {
        await sql(
          (s) => s`
            UPDATE jobs SET status = ${status},
              created_at = now() - interval '3 hours', updated_at = now() - interval '3 hours',
              run_at = now() + interval '1 hour',
              attempts = CASE WHEN ${status} IN ('queued') THEN 0 ELSE 1 END,
              started_at = CASE WHEN ${status} = 'queued' THEN NULL ELSE now() - interval '3 hours' END,
              finished_at = CASE WHEN ${finishedAgo}::text IS NULL THEN NULL ELSE now() - ${finishedAgo}::interval END,
              lease_owner = CASE WHEN ${lease} = 'held' THEN 'elsewhere' END,
              lease_expires_at = CASE WHEN ${lease} = 'held' THEN now() + interval '1 hour' END,
              cancel_requested_at = CASE WHEN ${i} = 9 THEN now() - interval '3 hours' END
            WHERE id = ${ids[i]!} RETURNING id`
        )
      }
      const left = async () =>
        new Set(
          (
            await sql<{ id: string }>(
              (s) => s`SELECT id::text AS id FROM jobs WHERE id = ANY(${ids}::uuid[])`
            )
          ).map((r) => r.id)
        )
      const old = [0, 1, 2]
      const worker = ManagedRuntime.make(
        Worker.layer({ kinds, settings: { retention: "1 hour", queues: ["nothing-here"] } }).pipe(
          Layer.provide(database)
        )
      )
      try {
        await worker.runPromise(Effect.void)
        const remaining = await waitFor("the old finished jobs to be pruned", async () => {
          const now = await left()
          return old.every((i) => !now.has(ids[i]!)) ? now : undefined
        })
        // the prune statement that deleted the old ones saw every other row and kept it
        expect(arranged.filter((_, i) => remaining.has(ids[i]!)).map(([label]) => label)).toEqual(
          arranged.slice(3).map(([label]) => label)
        )
      } finally {
        await worker.dispose()
      }
    } finally {
      await queue.dispose()
      await pruneDb.drop()
    }
  })
})

describe("JOB_RETENTION from the environment", () => {
  const retentionWith = (value: string) =>
    Effect.runPromise(
      WorkerConfig.use((c) => Effect.succeed(c.retention)).pipe(
        Effect.provide(
          WorkerConfig.fromEnv.pipe(
            Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ JOB_RETENTION: value })))
          )
        )
      )
    )

  it('reads a bare "0" as zero, and durations as durations', async () => {
    expect(Duration.toMillis((await retentionWith("0"))!)).toBe(0)
    expect(Duration.toMillis((await retentionWith("7 days"))!)).toBe(7 * 24 * 3600 * 1000)
  })

  it("refuses a value that is neither, naming the variable", async () => {
    await expect(retentionWith("soon")).rejects.toThrow(/JOB_RETENTION/)
  })
})
