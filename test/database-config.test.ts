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

const db = await emptyDatabase(import.meta.file)
afterAll(db.drop)

describe("a multiplexed pool", () => {
  /**
   * Runs `count` statements at once on a pool of `count` connections; each sleeps 50 ms, so all are in
   * flight together (every one is issued before the first connection even opens), and the one at `failing`
   * divides by zero. Answers each statement's backend and the pool's backends in pg_stat_activity after.
   */
  const concurrently = (multiplex: number, count: number, failing?: number) => {
    const applicationName = `jobq-multiplex-${multiplex}-${Math.random().toString(36).slice(2, 8)}`
    return Effect.runPromise(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const results = yield* Effect.forEach(
          Array.from({ length: count }, (_, i) => i),
          (i) =>
            (i === failing
              ? sql`SELECT pg_backend_pid() AS pid, 1 / 0 AS nothing`
              : sql`SELECT pg_backend_pid() AS pid, pg_sleep(0.05)::text AS slept`
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
  }

  it("pipelines statements in flight together on one connection, and a failing one fails alone", async () => {
    const { results, pids, backends } = await concurrently(32, 8, 3)
    expect(results.map((r) => r.ok)).toEqual([true, true, true, false, true, true, true, true])
    // 8 statements at once on a pool that may open 8 connections: pipelined, they shared one
    expect(pids).toBe(1)
    expect(backends).toBe(1)
  })

  it("without multiplexing the same statements take one connection each", async () => {
    const { results, pids, backends } = await concurrently(1, 8)
    expect(results.every((r) => r.ok)).toBe(true)
    expect(pids).toBe(8)
    expect(backends).toBe(8)
  })
})
