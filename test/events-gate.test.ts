/**
 * The gates of migrations/0008: the database notifies finished jobs and writes the event log only while a
 * session holds the gate (`Notifications.hold`), and a hold returns only once every transaction that may
 * have skipped has ended. Checked on the database's own record: the notifications a plain LISTEN session
 * receives and the rows of `event_log`.
 */
import { describe, expect, it } from "bun:test"
import { PgClient } from "@effect/sql-pg"
import { Deferred, Effect, Fiber, Scope } from "effect"
import { SqlClient } from "effect/sql"
import { Notifications } from "../src/db/Notifications.ts"
import { Queue } from "../src/queue/Queue.ts"
import { notificationsDuring, sentinel } from "./support/notifications.ts"
import { setupQueueTests } from "./support/runtime.ts"

const { run } = await setupQueueTests(import.meta.file)

const enqueue = () =>
  run(Queue.use((q) => q.enqueue({ kind: "noop", payload: {}, queue: "nobody-serves-it" }))).then(
    (e) => e.job
  )

const finish = (id: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`UPDATE jobs SET status = 'succeeded', finished_at = now() WHERE id = ${id}`
  )

const events = (id: string) =>
  run(
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) => sql<{ type: string }>`SELECT type FROM event_log WHERE job_id = ${id} ORDER BY tx, id`
    )
  ).then((rows) => rows.map((r) => r.type))

/** The finished notifications a job's completion causes, up to a sentinel sent after it. */
const finishedNotifications = (id: string) =>
  run(
    notificationsDuring(
      "jobq_finished",
      Effect.andThen(finish(id), sentinel("jobq_finished", "sentinel")),
      (p) => p === "sentinel"
    )
  ).then((r) => r.seen.filter((p) => p !== "sentinel"))

describe("the gates (migrations/0008)", () => {
  it("closed: a completion notifies nobody and writes no event", async () => {
    const job = await enqueue()
    expect(await finishedNotifications(job.id)).toEqual([])
    expect(await events(job.id)).toEqual([])
  })

  it("held: one notification per transaction, and every transition as an event", async () => {
    const scope = await run(Scope.make())
    try {
      await run(
        Effect.flatMap(Notifications, (n) =>
          Effect.all([n.hold("finished"), n.hold("events")]).pipe(Scope.provide(scope))
        )
      )
      const a = await enqueue()
      const b = await enqueue()
      // one statement finishing two jobs: one notification
      const seen = await run(
        notificationsDuring(
          "jobq_finished",
          Effect.andThen(
            Effect.flatMap(
              SqlClient.SqlClient,
              (sql) =>
                sql`UPDATE jobs SET status = 'succeeded', finished_at = now() WHERE id IN (${a.id}, ${b.id})`
            ),
            sentinel("jobq_finished", "sentinel")
          ),
          (p) => p === "sentinel"
        )
      ).then((r) => r.seen.filter((p) => p !== "sentinel"))
      expect(seen).toEqual(["*"])
      expect(await events(a.id)).toEqual(["enqueued", "succeeded"])
    } finally {
      await run(Scope.close(scope, Effect.void as never))
    }
    // released: closed again
    const c = await enqueue()
    expect(await finishedNotifications(c.id)).toEqual([])
  })

  it("a hold waits for a transaction that skipped the gate, and opens it for the next", async () => {
    const job = await enqueue()
    const inTransaction = await run(Deferred.make<void>())
    const release = await run(Deferred.make<void>())
    // a transaction that finishes a job while the gate is closed, and stays open
    const writer = await run(
      Effect.flatMap(PgClient.PgClient, (pg) =>
        pg.withTransaction(
          Effect.gen(function* () {
            yield* finish(job.id)
            yield* Deferred.succeed(inTransaction, undefined)
            yield* Deferred.await(release)
          })
        )
      ).pipe(Effect.forkDetach)
    )
    await run(Deferred.await(inTransaction))
    const scope = await run(Scope.make())
    try {
      const holding = await run(
        Effect.flatMap(Notifications, (n) => n.hold("events")).pipe(Scope.provide(scope), Effect.forkDetach)
      )
      await Bun.sleep(300)
      // still waiting: the writer holds the shared lock
      expect(holding.pollUnsafe()).toBeUndefined()
      // while the hold waits, a new transaction already finds the gate open
      const other = await enqueue()
      expect(await events(other.id)).toEqual(["enqueued"])
      await run(Deferred.succeed(release, undefined))
      await run(Fiber.join(writer))
      const held = await run(Fiber.join(holding))
      expect(held.reopened).toBe(true)
      // the writer's transaction skipped: its completion left no event
      expect(await events(job.id)).toEqual([])
    } finally {
      await run(Scope.close(scope, Effect.void as never))
    }
  })
})
