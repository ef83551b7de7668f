/**
 * Event batches (migrations/0012) on the embedded PGlite, whose one session holds the events gate as a
 * setting (`jobq.events = 'open'`): the claim and the completion write one row each, and the setting is put
 * back after each statement, so the row triggers still record what follows.
 */
import { afterAll, describe, expect, it } from "bun:test"
import { PGlite } from "@electric-sql/pglite"
import { Effect, Layer, ManagedRuntime, Scope } from "effect"
import { SqlClient } from "effect/sql"
import * as Migrator from "../src/db/Migrator.ts"
import { Notifications } from "../src/db/Notifications.ts"
import * as PgliteClient from "../src/db/PgliteClient.ts"
import { JobRepo } from "../src/queue/JobRepo.ts"

const runtime = ManagedRuntime.make(
  JobRepo.layer.pipe(
    Layer.provide(Layer.effectDiscard(Effect.orDie(Migrator.migrate()))),
    Layer.provideMerge(PgliteClient.layer(() => PGlite.create("memory://")))
  )
)
afterAll(() => runtime.dispose())

describe("event batches on PGlite", () => {
  it("writes one row per claim and completion while the gate is held, and row events after them", async () => {
    const rows = await runtime.runPromise(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const repo = yield* JobRepo
        const scope = yield* Scope.make()
        yield* Effect.flatMap(Notifications, (n) => n.hold("events")).pipe(Scope.provide(scope))
        yield* sql`INSERT INTO jobs (queue, kind, payload) SELECT 'pg', 'noop', '{}' FROM generate_series(1, 3)`
        const claimed = yield* repo.claim("pglite", 10, 60_000)
        yield* repo.complete(
          "pglite",
          claimed.map((job) => ({ id: job.id, result: null }))
        )
        yield* sql`INSERT INTO jobs (queue, kind, payload) VALUES ('pg', 'noop', '{}')`
        yield* Scope.close(scope, Effect.void as never)
        return yield* sql<{ type: string; size: number; batch: boolean }>`
          SELECT type, size, jobs IS NOT NULL AS batch FROM event_log ORDER BY tx, id`
      })
    )
    expect(rows.map((r) => `${r.type}:${r.size}:${r.batch}`)).toEqual([
      "enqueued:1:false",
      "enqueued:1:false",
      "enqueued:1:false",
      "started:3:true",
      "succeeded:3:true",
      "enqueued:1:false"
    ])
  })
})
