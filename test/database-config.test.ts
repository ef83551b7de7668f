import { afterAll, describe, expect, it } from "bun:test"
import { SQL } from "bun"
import { ConfigProvider, Duration, Effect, Exit, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { DatabaseConfig, type DatabaseDefaults } from "../src/Config.ts"
import { ClaimSession } from "../src/db/ClaimSession.ts"
import * as Database from "../src/db/Database.ts"
import { emptyDatabase } from "./support/database.ts"
import { waitFor } from "./support/runtime.ts"

const url = "postgres://postgres@127.0.0.1:5432/postgres"

const configWith = (env: Record<string, string>, defaults?: DatabaseDefaults) =>
  Effect.runPromise(
    Effect.exit(
      Effect.gen(function* () {
        return yield* DatabaseConfig
      }).pipe(
        Effect.provide(
          DatabaseConfig.fromEnv("test", defaults).pipe(
            Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env)))
          )
        )
      )
    )
  )

describe("DATABASE_MULTIPLEX", () => {
  it("is off (1) unless the program or the environment says otherwise", async () => {
    expect(await configWith({ DATABASE_URL: url })).toMatchObject({ value: { multiplex: 1 } })
    expect(await configWith({ DATABASE_URL: url }, { multiplex: DatabaseConfig.apiMultiplex })).toMatchObject(
      {
        value: { multiplex: 32 }
      }
    )
    expect(
      await configWith(
        { DATABASE_URL: url, DATABASE_MULTIPLEX: "1" },
        { multiplex: DatabaseConfig.apiMultiplex }
      )
    ).toMatchObject({ value: { multiplex: 1 } })
  })

  it("refuses 0 and negative numbers, naming the variable", async () => {
    const exit = await configWith({ DATABASE_URL: url, DATABASE_MULTIPLEX: "0" })
    expect(Exit.isFailure(exit)).toBe(true)
    expect(String(Exit.isFailure(exit) ? exit.cause : "")).toContain("DATABASE_MULTIPLEX must be 1 or more")
  })
})

describe("DATABASE_POOLER and DATABASE_LISTEN_URL", () => {
  const listen = "postgres://postgres@127.0.0.1:5432/other"

  it("default to Postgres itself: prepared statements on, LISTEN where the pool connects", async () => {
    expect(await configWith({ DATABASE_URL: url })).toMatchObject({
      value: { pooler: "none", prepare: true, listenUrl: undefined }
    })
  })

  it("in transaction mode turn prepared statements off unless DATABASE_PREPARE says otherwise", async () => {
    const pooled = { DATABASE_URL: url, DATABASE_POOLER: "Transaction", DATABASE_LISTEN_URL: listen }
    const exit = await configWith(pooled)
    expect(exit).toMatchObject({ value: { pooler: "transaction", prepare: false } })
    expect(Exit.isSuccess(exit) && Redacted.value(exit.value.listenUrl!)).toBe(listen)
    expect(await configWith({ ...pooled, DATABASE_PREPARE: "true" })).toMatchObject({
      value: { prepare: true }
    })
    expect(await configWith({ DATABASE_URL: url, DATABASE_POOLER: "session" })).toMatchObject({
      value: { pooler: "session", prepare: true, listenUrl: undefined }
    })
  })

  it("refuse transaction mode without DATABASE_LISTEN_URL, and a mode they do not know, naming the variable", async () => {
    const without = await configWith({ DATABASE_URL: url, DATABASE_POOLER: "transaction" })
    expect(String(Exit.isFailure(without) ? without.cause : "")).toContain(
      "DATABASE_POOLER=transaction needs DATABASE_LISTEN_URL"
    )
    const unknown = await configWith({ DATABASE_URL: url, DATABASE_POOLER: "statement" })
    expect(String(Exit.isFailure(unknown) ? unknown.cause : "")).toContain(
      'DATABASE_POOLER="statement" is not one of none, session, transaction'
    )
  })
})

const db = await emptyDatabase(import.meta.file)
afterAll(db.drop)
describe("DATABASE_STATEMENT_TIMEOUT and DATABASE_LOCK_TIMEOUT", () => {
  const timeouts = async (env: Record<string, string>, defaults?: DatabaseDefaults) => {
    const exit = await configWith({ DATABASE_URL: url, ...env }, defaults)
    if (Exit.isFailure(exit)) throw new Error(String(exit.cause))
    const ms = (d: Duration.Duration | undefined) => (d === undefined ? undefined : Duration.toMillis(d))
    return { statement: ms(exit.value.statementTimeout), lock: ms(exit.value.lockTimeout) }
  }

  it("are none unless the program (the API: 5 s and 1 s) or the environment sets them; 0 turns one off", async () => {
    expect(await timeouts({})).toEqual({ statement: undefined, lock: undefined })
    expect(await timeouts({}, DatabaseConfig.apiDefaults)).toEqual({ statement: 5000, lock: 1000 })
    expect(
      await timeouts(
        { DATABASE_STATEMENT_TIMEOUT: "0", DATABASE_LOCK_TIMEOUT: "250 millis" },
        DatabaseConfig.apiDefaults
      )
    ).toEqual({ statement: undefined, lock: 250 })
  })

  it("reach every session of the pool as the server's own settings", async () => {
    const settings = await Effect.runPromise(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        return yield* sql<{ statement: string; lock: string }>`
          SELECT current_setting('statement_timeout') AS statement, current_setting('lock_timeout') AS lock`
      }).pipe(
        Effect.provide(
          Database.layer.pipe(
            Layer.provide(
              DatabaseConfig.fromEnv("test", DatabaseConfig.apiDefaults).pipe(
                Layer.provide(
                  ConfigProvider.layer(
                    ConfigProvider.fromUnknown({ DATABASE_URL: url, DATABASE_LOCK_TIMEOUT: "2 seconds" })
                  )
                )
              )
            )
          )
        )
      )
    )
    expect(settings).toEqual([{ statement: "5s", lock: "2s" }])
  })
})

describe("a multiplexed pool", () => {
  /**
   * Issues `count` statements at once on a pool that may open `count` connections. Each waits for an
   * advisory lock this test holds (the one at `failing` divides by zero instead), and the test releases it
   * only once `waiting` backends of the pool wait for it, so the statements are in flight together. Answers
   * each statement's backend and the pool's backends in pg_stat_activity after.
   */
  const concurrently = async (multiplex: number, count: number, waiting: number, failing?: number) => {
    const applicationName = `jobq-multiplex-${multiplex}-${Math.random().toString(36).slice(2, 8)}`
    const holder = new SQL({ url: db.url, max: 1 })
    await holder`SELECT pg_advisory_lock(4242)`
    try {
      const done = Effect.runPromise(
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          const results = yield* Effect.forEach(
            Array.from({ length: count }, (_, i) => i),
            (i) =>
              (i === failing
                ? sql`SELECT pg_backend_pid() AS pid, 1 / 0 AS nothing`
                : sql`SELECT pg_backend_pid() AS pid, pg_advisory_xact_lock_shared(4242)::text AS locked`
              ).pipe(
                Effect.map((rows) => ({ ok: true as const, pid: Number(rows[0]!.pid) })),
                Effect.catch(() => Effect.succeed({ ok: false as const, pid: 0 }))
              ),
            { concurrency: "unbounded" }
          )
          const sessions = yield* sql<{ backends: number }>`
            SELECT count(*)::int AS backends FROM pg_stat_activity WHERE application_name = ${applicationName}`
          const pids = new Set(results.filter((r) => r.ok).map((r) => r.pid))
          return { results, pids: pids.size, backends: sessions[0]!.backends }
        }).pipe(
          Effect.provide(Database.layerUrl(db.url, { maxConnections: count, multiplex, applicationName }))
        )
      )
      await waitFor(`${waiting} of the pool's backends to wait for the lock`, async () => {
        const [{ n }] = await holder`
          SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE application_name = ${applicationName} AND wait_event_type = 'Lock'`
        if (n > waiting) throw new Error(`${n} of the pool's backends wait for the lock, not ${waiting}`)
        return n === waiting ? true : undefined
      })
      await holder`SELECT pg_advisory_unlock(4242)`
      return await done
    } finally {
      await holder.close()
    }
  }

  it("pipelines statements in flight together on one connection, and a failing one fails alone", async () => {
    // 8 statements at once on a pool that may open 8 connections: pipelined behind the first, which waits
    // for the lock, they share its connection
    const { results, pids, backends } = await concurrently(32, 8, 1, 3)
    expect(results.map((r) => r.ok)).toEqual([true, true, true, false, true, true, true, true])
    expect(pids).toBe(1)
    expect(backends).toBe(1)
  })

  it("without multiplexing the same statements take one connection each", async () => {
    // all 8 wait for the lock at once, each on its own connection
    const { results, pids, backends } = await concurrently(1, 8, 8)
    expect(results.every((r) => r.ok)).toBe(true)
    expect(pids).toBe(8)
    expect(backends).toBe(8)
  })
})

describe("a worker's claim session", () => {
  const claimSession = (options: Parameters<typeof Database.layerUrl>[1]) =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const session = yield* Effect.serviceOption(ClaimSession)
          if (session._tag === "None") return undefined
          const sql = yield* session.value.open(2)
          // two statements in flight at once: the second is written while the first sleeps
          const [first, second] = yield* Effect.all(
            [
              sql<{ pid: number; ended: number }>`
                SELECT pg_backend_pid() AS pid, pg_sleep(0.2)::text,
                       extract(epoch FROM clock_timestamp())::float8 AS ended`,
              sql<{ pid: number; began: number }>`
                SELECT pg_backend_pid() AS pid, extract(epoch FROM statement_timestamp())::float8 AS began`
            ],
            { concurrency: 2 }
          )
          return { first: first[0]!, second: second[0]! }
        }).pipe(Effect.provide(Database.layerUrl(url, options)))
      )
    )

  it("runs its statements one after the other on one connection of its own", async () => {
    const ran = await claimSession({ applicationName: "claim-session-test" })
    expect(ran).toBeDefined()
    expect(ran!.second.pid).toBe(ran!.first.pid)
    // the second began once the first was done: Postgres reads a connection's statements in order
    expect(ran!.second.began).toBeGreaterThanOrEqual(ran!.first.ended)
  })

  it("is not offered behind a transaction pooler, which hands each transaction to any server session", async () => {
    expect(await claimSession({ pooler: "transaction", listenUrl: url })).toBeUndefined()
  })
})
