/**
 * A worker renews the leases of the jobs it holds while its completer commits a batch of the same jobs,
 * on two connections. On main the renewal locked rows in the order its join met them, so a completion that
 * locked them in another order deadlocked with it (Postgres logged it under slow completions). The renewal
 * now never waits for a row lock: a row locked by the completion is skipped for one round.
 */
import { describe, expect, it } from "bun:test"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { JobRepo } from "../src/queue/JobRepo.ts"
import { Queue } from "../src/queue/Queue.ts"
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
