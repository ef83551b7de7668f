/**
 * Lease renewal. (1) A worker renews the leases of the jobs it holds while its completer commits a batch of the same jobs,
 * on two connections. On main the renewal locked rows in the order its join met them, so a completion that
 * locked them in another order deadlocked with it (Postgres logged it under slow completions). The renewal
 * now never waits for a row lock: a row locked by the completion is skipped for one round. (2) A worker looks
 * at its leases every round (cancel asked? still ours?) but writes a job's row only when its lease is due
 * (half a lease left) or its start is to be recorded. (3) A worker's pool never marks a lease due: its row in
 * `workers` holds the lease (migration 0013), so a long job's row is written only at its claim and its start.
 */
import { describe, expect, it } from "bun:test"
import { Effect, Layer, ManagedRuntime } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../src/db/Database.ts"
import { demoKinds } from "../src/kinds/DemoKinds.ts"
import { JobRepo } from "../src/queue/JobRepo.ts"
import * as QueueLayer from "../src/queue/layer.ts"
import { Queue } from "../src/queue/Queue.ts"
import * as Worker from "../src/worker/index.ts"
import { queueRuntime, setupQueueTests, waitFor } from "./support/runtime.ts"

const { db, run } = await setupQueueTests(import.meta.file)

const scalar = (query: string) =>
  run(
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe("SELECT pg_stat_clear_snapshot()")
      const rows = yield* sql.unsafe<{ n: string | number }>(query)
      return Number(rows[0]?.n ?? 0)
    })
  )
const deadlocks = () =>
  scalar("SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()")
const lockWaits = () =>
  scalar(
    "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
  )
const backends = () =>
  scalar(
    "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
  )

describe("lease renewal beside a batched completion", () => {
  it("never deadlocks: the renewal skips the rows the completion holds, and says they are still held", async () => {
    const queue = "renew-deadlock"
    await run(Queue.use((q) => q.enqueueMany([1, 2].map(() => ({ kind: "noop", payload: {}, queue })))))
    const claimed = await run(JobRepo.use((r) => r.claim("w1", 2, 30_000, [queue])))
    expect(claimed.length).toBe(2)
    const a = claimed[0]!.id
    const b = claimed[1]!.id
    const before = await deadlocks()

    // the completion and the renewal each on a connection of their own, in a runtime of their own whose
    // backends end (and so flush their statistics) when it is disposed
    const scenario = queueRuntime(db.url)
    let proceed!: () => void
    const gate = new Promise<void>((resolve) => {
      proceed = resolve
    })
    let bLocked!: () => void
    const bLockedNow = new Promise<void>((resolve) => {
      bLocked = resolve
    })
    // the completer's transaction locks b first and a last, as a batch whose join met them in that order
    const completion = scenario.runPromise(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const repo = yield* JobRepo
        return yield* sql.withTransaction(
          Effect.gen(function* () {
            const first = yield* repo.complete("w1", [{ id: b, result: null }])
            yield* Effect.sync(bLocked)
            yield* Effect.promise(() => gate)
            const second = yield* repo.complete("w1", [{ id: a, result: null }])
            return [...first, ...second]
          })
        )
      })
    )
    await bLockedNow
    let renewalDone = false
    const renewal = scenario
      .runPromise(
        JobRepo.use((r) =>
          r.renewLeases(
            "w1",
            [a, b].map((id) => ({ id, started: true })),
            120_000
          )
        )
      )
      .finally(() => {
        renewalDone = true
      })
    // the renewal answered, or it waits for b's lock (holding a's: the old statement)
    await waitFor("the renewal to answer or to wait for a row lock", async () =>
      renewalDone || (await lockWaits()) > 0 ? true : undefined
    )
    proceed()
    const [completed, renewed] = await Promise.allSettled([completion, renewal])
    await scenario.dispose()
    await waitFor("the scenario's backends to end", async () => ((await backends()) <= 1 ? true : undefined))

    expect(completed.status === "rejected" ? String(completed.reason) : "fulfilled").toBe("fulfilled")
    expect(renewed.status === "rejected" ? String(renewed.reason) : "fulfilled").toBe("fulfilled")
    if (completed.status !== "fulfilled" || renewed.status !== "fulfilled") return
    expect([...completed.value].sort()).toEqual([a, b].sort())
    // a was renewed; b was being completed, so it was skipped, and reported held (not lost)
    expect([...renewed.value].sort((x, y) => (x.id < y.id ? -1 : 1))).toEqual(
      [
        { id: a, cancelRequested: false, renewed: true },
        { id: b, cancelRequested: false, renewed: false }
      ].sort((x, y) => (x.id < y.id ? -1 : 1))
    )
    expect(await deadlocks()).toBe(before)
  })
})

/** The row's `xmin` (the transaction that wrote its current version) and its lease, as the database has them. */
const rowVersion = (id: string) =>
  run(
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql<{ xmin: string; status: string; lease: Date | null }>`
        SELECT xmin::text AS xmin, status, lease_expires_at AS lease FROM jobs WHERE id = ${id}`
      return rows[0]!
    })
  )

describe("renewing only what is due", () => {
  it("a lease that is not due is looked at, not written; its start is recorded once", async () => {
    const queue = "renew-due"
    await run(Queue.use((q) => q.enqueue({ kind: "noop", payload: {}, queue })))
    const [job] = await run(JobRepo.use((r) => r.claim("w1", 1, 30_000, [queue])))
    const id = job!.id
    const claimed = await rowVersion(id)
    // not started, not due: nothing to write
    const look = await run(
      JobRepo.use((r) => r.renewLeases("w1", [{ id, started: false, due: false }], 30_000))
    )
    expect(look).toEqual([{ id, cancelRequested: false, renewed: false }])
    expect(await rowVersion(id)).toEqual(claimed)
    // started, not due: the start is recorded (one write), the lease left as it was
    const recorded = await run(
      JobRepo.use((r) => r.renewLeases("w1", [{ id, started: true, due: false }], 120_000))
    )
    expect(recorded).toEqual([{ id, cancelRequested: false, renewed: false }])
    const afterStart = await rowVersion(id)
    expect(afterStart.xmin).not.toBe(claimed.xmin)
    expect(afterStart.lease).toEqual(claimed.lease)
    // from then on a look writes nothing, and still sees a cancel
    await run(Queue.use((q) => q.cancel(id)))
    const cancelled = await rowVersion(id)
    const again = await run(
      JobRepo.use((r) => r.renewLeases("w1", [{ id, started: true, due: false }], 120_000))
    )
    expect(again).toEqual([{ id, cancelRequested: true, renewed: false }])
    expect(await rowVersion(id)).toEqual(cancelled)
    // another worker's look finds nothing of its own
    expect(
      await run(JobRepo.use((r) => r.renewLeases("w2", [{ id, started: true, due: true }], 120_000)))
    ).toEqual([])
  })

  it("a worker holding a long job writes its row only to record its start (its row in workers holds the lease), and keeps it past several leases", async () => {
    const worker = ManagedRuntime.make(
      Layer.mergeAll(
        Worker.layer({
          kinds: demoKinds,
          settings: {
            concurrency: 2,
            queues: ["renew-long"],
            lease: "1 second",
            renewInterval: "50 millis",
            pollInterval: "100 millis",
            rescueInterval: "100 millis"
          }
        }),
        QueueLayer.layer(demoKinds)
      ).pipe(Layer.provideMerge(Database.layerUrl(db.url, { maxConnections: 4 })))
    )
    try {
      await worker.runPromise(Effect.void)
      const { job } = await run(
        Queue.use((q) => q.enqueue({ kind: "sleep", payload: { ms: 3_000 }, queue: "renew-long" }))
      )
      await waitFor("the job to run", async () =>
        (await rowVersion(job.id)).status === "running" ? true : undefined
      )
      // every 50 ms for 2 s (two leases): with leases renewed every round, each round wrote the row (about 40
      // versions); renewed when due, about once per half lease (4-5); held by the worker's row, never
      const versions = new Set<string>()
      const until = Date.now() + 2_000
      while (Date.now() < until) {
        const row = await rowVersion(job.id)
        if (row.status !== "running") break
        versions.add(row.xmin)
        await Bun.sleep(50)
      }
      // the claim's version and the start's, at most (the first sample may come after the start's write)
      expect(versions.size).toBeGreaterThanOrEqual(1)
      expect(versions.size).toBeLessThanOrEqual(2)
      const done = await waitFor("the job to end", async () => {
        const got = await run(Queue.use((q) => q.get(job.id)))
        return got.status === "running" ? undefined : got
      })
      // never rescued: one attempt, succeeded
      expect(done).toMatchObject({ status: "succeeded", attempts: 1 })
    } finally {
      await worker.dispose()
    }
  })
})
