/**
 * The worker's view of whether anyone follows events (`EventsFollowed`, kept by `followWatch`): its claims
 * and completions take their batch form (one `event_log` row per statement, migrations/0012) only while
 * someone follows, and a stale view loses no event: with the view saying "nobody" while a follower listens,
 * the row triggers write every job's events.
 */
import { afterAll, describe, expect, it } from "bun:test"
import { Effect, Fiber, Layer, ManagedRuntime } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../../src/db/Database.ts"
import { gateKey } from "../../src/db/Notifications.ts"
import { EventsFollowed } from "../../src/queue/eventBatch.ts"
import { JobRepo } from "../../src/queue/JobRepo.ts"
import { Queue } from "../../src/queue/Queue.ts"
import { followWatch } from "../../src/worker/FollowWatch.ts"
import { setupApiTests } from "../support/api.ts"
import { eventData, sseReader } from "../support/sse.ts"

const { run, handler: api, db } = await setupApiTests(import.meta.file)

// the worker's cell, shared by its repositories, here set by hand or by the watch
const cell = { followed: true }
const worker = ManagedRuntime.make(
  JobRepo.layer.pipe(
    Layer.provideMerge(Layer.succeed(EventsFollowed, cell)),
    Layer.provideMerge(Database.layerUrl(db.url, { maxConnections: 2 }))
  )
)
// one connection: a session-level advisory lock is released on the session that took it
const holder = ManagedRuntime.make(Database.layerUrl(db.url, { maxConnections: 1 }))
afterAll(() => Promise.all([worker.dispose(), holder.dispose()]))
const gateLock = (action: "lock" | "unlock") =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`SELECT pg_advisory_${action}(${gateKey}, 2)`))

const waitFor = async (what: string, check: () => boolean, ms = 10_000) => {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(20)
  }
}

const enqueue = (queue: string) =>
  run(Queue.use((q) => q.enqueue({ kind: "noop", payload: {}, queue }))).then((e) => e.job.id as string)
const claimAndComplete = (queue: string) =>
  worker.runPromise(
    JobRepo.use((r) =>
      Effect.flatMap(r.claim("watch-test", 100, 60_000, [queue]), (jobs) =>
        r.complete(
          "watch-test",
          jobs.map((j) => ({ id: j.id, result: null }))
        )
      )
    )
  )
const logRows = (ids: ReadonlyArray<string>) =>
  worker.runPromise(
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) => sql<{ type: string; size: number | null }>`
        SELECT type, size FROM event_log
        WHERE type IN ('started', 'succeeded') AND (job_id = ANY(${ids}::uuid[]) OR jobs && ${ids}::uuid[])
        ORDER BY type`
    )
  )

describe("the worker's view of event followers", () => {
  it("follows the gate: nobody following, then a session holding it, then nobody again", async () => {
    const watch = worker.runFork(JobRepo.use((repo) => followWatch(repo, cell, "50 millis")))
    try {
      await waitFor("the view to say nobody follows", () => !cell.followed)
      // a session holding the followers' gate, as an API process with a follower does
      await holder.runPromise(gateLock("lock"))
      await waitFor("the view to see the follower", () => cell.followed)
      await holder.runPromise(gateLock("unlock"))
      await waitFor("the view to see the follower gone", () => !cell.followed)
    } finally {
      await worker.runPromise(Fiber.interrupt(watch))
    }
  })

  it("loses no event when the view is stale: the row triggers write them, one row per job", async () => {
    const response = await api(new Request("http://api.test/events?queue=fw-stale"))
    const reader = sseReader(response)
    expect((await reader.next())?.comments[0]).toStartWith("open ")
    cell.followed = false
    const jobs = [await enqueue("fw-stale"), await enqueue("fw-stale")]
    await claimAndComplete("fw-stale")
    const events = await reader.events(6)
    expect(
      events
        .filter((m) => m.event === "started")
        .map((m) => eventData(m).job)
        .sort()
    ).toEqual([...jobs].sort())
    expect(
      events
        .filter((m) => m.event === "succeeded")
        .map((m) => eventData(m).job)
        .sort()
    ).toEqual([...jobs].sort())
    // the database's record: per-job rows (no batch row)
    const rows = await logRows(jobs)
    expect(rows.map((r) => `${r.type} ${r.size ?? 1}`)).toEqual([
      "started 1",
      "started 1",
      "succeeded 1",
      "succeeded 1"
    ])
    await reader.cancel()
  })

  it("writes one row per statement when the view says someone follows", async () => {
    const response = await api(new Request("http://api.test/events?queue=fw-batch"))
    const reader = sseReader(response)
    expect((await reader.next())?.comments[0]).toStartWith("open ")
    cell.followed = true
    const jobs = [await enqueue("fw-batch"), await enqueue("fw-batch")]
    await claimAndComplete("fw-batch")
    const events = await reader.events(6)
    expect(events.filter((m) => m.event === "succeeded")).toHaveLength(2)
    const rows = await logRows(jobs)
    expect(rows.map((r) => `${r.type} ${r.size}`)).toEqual(["started 2", "succeeded 2"])
    await reader.cancel()
  })
})
