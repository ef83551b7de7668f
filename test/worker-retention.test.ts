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
