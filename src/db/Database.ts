/**
 * The database layers: a Postgres connection pool (`PgClient` and the generic `SqlClient`) with
 * `Notifications` for LISTEN/NOTIFY. The queue itself needs only `SqlClient` and `Notifications`, which the
 * embedded PGlite driver (`PgliteClient`) provides too.
 * Name transforms stay off: they would rewrite keys inside JSON payloads. Rows are mapped explicitly.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import type { SqlClient } from "effect/sql"
import { DatabaseConfig } from "../Config.ts"
import { Notifications } from "./Notifications.ts"

const multiplexing = (statements: number) =>
  statements > 1 ? { multiplex: true, multiplexConcurrency: statements } : {}

const withNotifications = <E, R>(pool: Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, E, R>) =>
  Notifications.layerPg.pipe(Layer.provideMerge(pool))

export const layer = Layer.unwrap(
  Effect.gen(function* () {
    const config = yield* DatabaseConfig
    return withNotifications(
      PgClient.layer({
        url: config.url,
        maxConnections: config.maxConnections,
        connectTimeout: config.connectTimeout,
        applicationName: config.applicationName,
        prepare: config.prepare,
        ...multiplexing(config.multiplex)
      })
    )
  })
)

/** A pool for a URL given in code (tests, tools, embedding applications). */
export const layerUrl = (
  url: string,
  options: {
    readonly maxConnections?: number
    readonly applicationName?: string
    /** Statements that may share one connection, pipelined (`DATABASE_MULTIPLEX`); default 1, off. */
    readonly multiplex?: number
  } = {}
) =>
  withNotifications(
    PgClient.layer({
      url: Redacted.make(url),
      maxConnections: options.maxConnections ?? 10,
      applicationName: options.applicationName ?? "jobq",
      ...multiplexing(options.multiplex ?? 1)
    })
  )

/** DATABASE_URL and friends from the environment; `defaults` are the program's own (the API multiplexes). */
export const layerFromEnv = (applicationName: string, defaults: { readonly multiplex?: number } = {}) =>
  layer.pipe(Layer.provide(DatabaseConfig.fromEnv(applicationName, defaults)))

/** What every database layer provides, whichever the driver. */
export type Sql = SqlClient.SqlClient | Notifications

/** What the Postgres layers provide. */
export type Pg = PgClient.PgClient | SqlClient.SqlClient | Notifications
