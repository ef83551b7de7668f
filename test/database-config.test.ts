import { afterAll, describe, expect, it } from "bun:test"
import { ConfigProvider, Effect, Exit, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { DatabaseConfig } from "../src/Config.ts"
import * as Database from "../src/db/Database.ts"
import { emptyDatabase } from "./support/database.ts"

const url = "postgres://postgres@127.0.0.1:5432/postgres"

const configWith = (env: Record<string, string>, defaults?: { readonly multiplex?: number }) =>
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
