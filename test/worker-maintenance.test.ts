import { afterAll, describe, expect, it } from "bun:test"
import { Effect, Layer, ManagedRuntime } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../src/db/Database.ts"
import { demoKinds } from "../src/kinds/DemoKinds.ts"
import * as QueueLayer from "../src/queue/layer.ts"
import { Queue } from "../src/queue/Queue.ts"
import * as Worker from "../src/worker/index.ts"
import { freshDatabase } from "./support/database.ts"
import { waitFor } from "./support/runtime.ts"

const db = await freshDatabase(import.meta.file)
const databaseLayer = Database.layerUrl(db.url, { applicationName: "jobq-maintenance-test" })
const queue = ManagedRuntime.make(QueueLayer.layer(demoKinds).pipe(Layer.provideMerge(databaseLayer)))
afterAll(async () => {
  await queue.dispose()
  await db.drop()
})

const reltuples = () =>
  queue.runPromise(
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) => sql<{ n: number }>`SELECT reltuples::float8 AS n FROM pg_class WHERE oid = 'jobs'::regclass`
    )
  )

describe("maintenance", () => {
  it("analyzes a jobs table Postgres has no statistics for, once it holds jobs", async () => {
    expect((await reltuples())[0]?.n).toBe(-1)
    // due in an hour: the worker must not need to run them for the table to be analyzed
    await queue.runPromise(
      Queue.use((q) =>
        q.enqueueMany(Array.from({ length: 1500 }, () => ({ kind: "noop", payload: {}, delayMs: 3_600_000 })))
      )
    )
    const worker = ManagedRuntime.make(
      Worker.layer({ kinds: demoKinds, settings: { rescueInterval: "100 millis" } }).pipe(
        Layer.provide(databaseLayer)
      )
    )
    try {
      await worker.runPromise(Effect.void)
      const analyzed = await waitFor("the jobs table to be analyzed", async () => {
        const n = (await reltuples())[0]?.n
        return n !== undefined && n >= 0 ? n : undefined
      })
      expect(analyzed).toBe(1500)
    } finally {
      await worker.dispose()
    }
  })
})
