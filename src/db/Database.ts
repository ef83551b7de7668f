/**
 * The Postgres connection pool, as both `PgClient` (LISTEN/NOTIFY) and the generic `SqlClient`.
 * Name transforms stay off: they would rewrite keys inside JSON payloads. Rows are mapped explicitly.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import type { SqlClient } from "effect/sql"
import { DatabaseConfig } from "../Config.ts"

export const layer = Layer.unwrap(
  Effect.gen(function* () {
    const config = yield* DatabaseConfig
    return PgClient.layer({
      url: config.url,
      maxConnections: config.maxConnections,
      connectTimeout: config.connectTimeout,
      applicationName: config.applicationName
    })
  })
)

/** A pool for a URL given in code (tests, tools, embedding applications). */
export const layerUrl = (
  url: string,
  options: { readonly maxConnections?: number; readonly applicationName?: string } = {}
) =>
  PgClient.layer({
    url: Redacted.make(url),
    maxConnections: options.maxConnections ?? 10,
    applicationName: options.applicationName ?? "jobq"
  })

/** DATABASE_URL and friends from the environment. */
export const layerFromEnv = (applicationName: string) =>
  layer.pipe(Layer.provide(DatabaseConfig.fromEnv(applicationName)))

/** What the database layers provide. */
export type Sql = PgClient.PgClient | SqlClient.SqlClient
