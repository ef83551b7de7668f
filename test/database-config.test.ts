import { afterAll, describe, expect, it } from "bun:test"
import { ConfigProvider, Duration, Effect, Exit, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { DatabaseConfig, type DatabaseDefaults } from "../src/Config.ts"
import * as Database from "../src/db/Database.ts"
import { emptyDatabase } from "./support/database.ts"

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
  it("lets statements share a connection, and a failing one fails alone", async () => {
    const db = await emptyDatabase(import.meta.file)
    afterAll(db.drop)
    const results = await Effect.runPromise(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        return yield* Effect.forEach(
          Array.from({ length: 40 }, (_, i) => i),
          (i) =>
            (i === 17 ? sql`SELECT 1 / 0 AS pid` : sql`SELECT pg_backend_pid() AS pid`).pipe(
              Effect.map((rows) => ({ ok: true as const, pid: Number(rows[0]!.pid) })),
              Effect.catch(() => Effect.succeed({ ok: false as const, pid: 0 }))
            ),
          { concurrency: "unbounded" }
        )
      }).pipe(Effect.provide(Database.layerUrl(db.url, { maxConnections: 1, multiplex: 32 })))
    )
    expect(results.filter((r) => !r.ok).length).toBe(1)
    expect(results[17]!.ok).toBe(false)
    expect(new Set(results.filter((r) => r.ok).map((r) => r.pid)).size).toBe(1)
  })
})
