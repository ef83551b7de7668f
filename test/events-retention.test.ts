/**
 * The event log's retention (EventFeed.prune, run by the feed while it holds the events gate): rows older
 * than the replay window go, and beyond the newest `maxEvents`; a follower whose id was pruned gets a reset.
 */
import { describe, expect, it } from "bun:test"
import { Duration, Effect, Layer, ManagedRuntime, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../src/db/Database.ts"
import { EventFeed } from "../src/queue/EventFeed.ts"
import { setupQueueTests } from "./support/runtime.ts"

const { run, db } = await setupQueueTests(import.meta.file)

const feedRuntime = (settings: { replayWindow: Duration.Duration; maxEvents: number }) =>
  ManagedRuntime.make(
    EventFeed.layer(settings).pipe(Layer.provideMerge(Database.layerUrl(db.url, { maxConnections: 2 })))
  )

const count = () =>
  run(
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) => sql<{ n: number }>`SELECT count(*)::integer AS n FROM event_log`
    )
  ).then((rows) => rows[0]!.n)

/** Writes `n` events directly, `age` ago. */
const write = (n: number, age: string) =>
  run(
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) => sql`INSERT INTO event_log (type, job_id, queue, kind, attempt, at)
                   SELECT 'enqueued', gen_random_uuid(), 'q', 'noop', 0, now() - ${age}::interval
                   FROM generate_series(1, ${n})`
    )
  )

describe("event log retention", () => {
  it("prunes rows older than the window, then beyond the count", async () => {
    await run(Effect.flatMap(SqlClient.SqlClient, (sql) => sql`TRUNCATE event_log`))
    await write(30, "10 minutes")
    await write(50, "1 second")
    const feed = feedRuntime({ replayWindow: Duration.minutes(5), maxEvents: 20 })
    try {
      await feed.runPromise(EventFeed.use((f) => f.prune))
      expect(await count()).toBe(20)
    } finally {
      await feed.dispose()
    }
  })

  it("tells a follower whose id was pruned to re-list", async () => {
    await run(Effect.flatMap(SqlClient.SqlClient, (sql) => sql`TRUNCATE event_log`))
    await write(5, "10 minutes")
    const [old] = await run(
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) =>
          sql<{ tx: string; id: string }>`SELECT tx::text, id::text FROM event_log ORDER BY tx, id LIMIT 1`
      )
    )
    await write(5, "1 second")
    const feed = feedRuntime({ replayWindow: Duration.minutes(5), maxEvents: 1000 })
    try {
      await feed.runPromise(EventFeed.use((f) => f.prune))
      expect(await count()).toBe(5)
      const first = await feed.runPromise(
        EventFeed.use((f) =>
          f
            .follow({ jobs: [], queues: [], kinds: [], types: [] }, `${old!.tx}-${old!.id}`)
            .pipe(Stream.take(2), Stream.runCollect)
        )
      )
      expect(first.map((item) => item._tag)).toEqual(["Open", "Reset"])
    } finally {
      await feed.dispose()
    }
  })
})
