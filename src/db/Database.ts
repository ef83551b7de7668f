/**
 * The database layers: a Postgres connection pool (`PgClient` and the generic `SqlClient`) with
 * `Notifications` for LISTEN/NOTIFY. The queue itself needs only `SqlClient` and `Notifications`, which the
 * embedded PGlite driver (`PgliteClient`) provides too.
 * Name transforms stay off: they would rewrite keys inside JSON payloads. Rows are mapped explicitly.
 */
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Layer, Redacted } from "effect"
import type { SqlClient } from "effect/sql"
import { DatabaseConfig, type DatabaseDefaults } from "../Config.ts"
import { Notifications } from "./Notifications.ts"

const multiplexing = (statements: number) =>
  statements > 1 ? { multiplex: true, multiplexConcurrency: statements } : {}

/**
 * `statement_timeout` and `lock_timeout` as startup parameters: every session of the pool (and each
 * listener's) starts with them, so bounding a statement costs no round trip.
 */
const serverTimeouts = (timeouts: {
  readonly statementTimeout?: Duration.Input | undefined
  readonly lockTimeout?: Duration.Input | undefined
}) => {
  const parameters: Record<string, string> = {}
  const set = (name: string, value: Duration.Input | undefined) => {
    if (value === undefined) return
    const ms = Math.ceil(Duration.toMillis(Duration.fromInputUnsafe(value)))
    if (ms > 0) parameters[name] = String(ms)
  }
  set("statement_timeout", timeouts.statementTimeout)
  set("lock_timeout", timeouts.lockTimeout)
  return Object.keys(parameters).length === 0 ? {} : { startupParameters: parameters }
}

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
        ...multiplexing(config.multiplex),
        ...serverTimeouts(config)
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
  } & DatabaseDefaults = {}
) =>
  withNotifications(
    PgClient.layer({
      url: Redacted.make(url),
      maxConnections: options.maxConnections ?? 10,
      applicationName: options.applicationName ?? "jobq",
      ...multiplexing(options.multiplex ?? 1),
      ...serverTimeouts(options)
    })
  )

/**
 * DATABASE_URL and friends from the environment; `defaults` are the program's own (the API multiplexes and
 * bounds its statements: `DatabaseConfig.apiDefaults`).
 */
export const layerFromEnv = (applicationName: string, defaults: DatabaseDefaults = {}) =>
  layer.pipe(Layer.provide(DatabaseConfig.fromEnv(applicationName, defaults)))

/** What every database layer provides, whichever the driver. */
export type Sql = SqlClient.SqlClient | Notifications

/** What the Postgres layers provide. */
export type Pg = PgClient.PgClient | SqlClient.SqlClient | Notifications
