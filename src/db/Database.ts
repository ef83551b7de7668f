/**
 * The database layers: a Postgres connection pool (`PgClient` and the generic `SqlClient`) with
 * `Notifications` for LISTEN/NOTIFY. The queue itself needs only `SqlClient` and `Notifications`, which the
 * embedded PGlite driver (`PgliteClient`) provides too.
 * Name transforms stay off: they would rewrite keys inside JSON payloads. Rows are mapped explicitly.
 */
import { PgClient } from "@effect/sql-pg"
import { Context, Effect, Layer, Redacted } from "effect"
import type { SqlClient } from "effect/sql"
import { DatabaseConfig, type DatabaseDefaults, type Pooler } from "../Config.ts"
import { ClaimSession } from "./ClaimSession.ts"
import { Notifications } from "./Notifications.ts"
import * as SessionBounds from "./SessionBounds.ts"

const multiplexing = (statements: number) =>
  statements > 1 ? { multiplex: true, multiplexConcurrency: statements } : {}

interface Sessions extends SessionBounds.Bounds {
  /** Where LISTEN and the gates' sessions connect; undefined: where the pool does. */
  readonly listenUrl?: Redacted.Redacted<string> | undefined
  readonly pooler: Pooler
}

/**
 * The pool with `Notifications` beside it, whose sessions (LISTEN, the gates' advisory locks) connect to
 * `listenUrl` with the pool's settings but no pipelining and no bounds (a gate's session waits as long as
 * another process holds the gate), and `ClaimSession`, a worker's claims on a connection of their own with
 * the pool's settings (opened only by a worker). Behind a pooler, the server's bounds are checked when the
 * pool opens.
 */
const poolWithSessions = (given: PgClient.PgPoolConfig, sessions: Sessions) => {
  const options = { ...given, keepAlive: given.keepAlive ?? tcpKeepAlive }
  return Notifications.layerPg({
    ...(sessions.listenUrl === undefined ? {} : { url: sessions.listenUrl }),
    multiplex: false,
    startupParameters: undefined
  }).pipe(
    Layer.provideMerge(
      Layer.tap(PgClient.layer(options), (services) =>
        SessionBounds.verify(Context.get(services, PgClient.PgClient), sessions, sessions.pooler)
      )
    ),
    // a worker's claims on a session of their own (under the pool's name), pipelined: not through a
    // transaction pooler
    Layer.merge(sessions.pooler === "transaction" ? Layer.empty : ClaimSession.layerPg(options))
  )
}

/**
 * TCP keepalive on every connection after this long idle: a connection whose peer vanished without a reset
 * (a NAT or firewall dropping its state, a host gone) errors after ~10 unanswered probes instead of leaving a
 * statement waiting for an answer for ever (a worker's claim on its claim session held every later claim and
 * hand-back behind it, and its heartbeat, on other connections, never noticed).
 */
const tcpKeepAlive = "10 seconds"

export const layer = Layer.unwrap(
  Effect.gen(function* () {
    const config = yield* DatabaseConfig
    return poolWithSessions(
      {
        url: config.url,
        maxConnections: config.maxConnections,
        connectTimeout: config.connectTimeout,
        applicationName: config.applicationName,
        prepare: config.prepare,
        ...multiplexing(config.multiplex),
        ...SessionBounds.startupParameters(config, config.pooler)
      },
      config
    )
  })
)

/** A pool for a URL given in code (tests, tools, embedding applications). */
export const layerUrl = (
  url: string,
  options: {
    readonly maxConnections?: number
    readonly applicationName?: string
    /** As DATABASE_LISTEN_URL; unset: `url`. */
    readonly listenUrl?: string
    /** As DATABASE_POOLER; default `none`. */
    readonly pooler?: Pooler
    /** As DATABASE_PREPARE; default: true, false with `pooler: "transaction"`. */
    readonly prepare?: boolean
  } & DatabaseDefaults = {}
) => {
  const pooler = options.pooler ?? "none"
  return poolWithSessions(
    {
      url: Redacted.make(url),
      maxConnections: options.maxConnections ?? 10,
      applicationName: options.applicationName ?? "jobq",
      prepare: options.prepare ?? pooler !== "transaction",
      ...multiplexing(options.multiplex ?? 1),
      ...SessionBounds.startupParameters(options, pooler)
    },
    {
      ...options,
      pooler,
      listenUrl: options.listenUrl === undefined ? undefined : Redacted.make(options.listenUrl)
    }
  )
}

/**
 * DATABASE_URL and friends from the environment; `defaults` are the program's own (the API multiplexes and
 * bounds its statements: `DatabaseConfig.apiDefaults`).
 */
export const layerFromEnv = (applicationName: string, defaults: DatabaseDefaults = {}) =>
  layer.pipe(Layer.provide(DatabaseConfig.fromEnv(applicationName, defaults)))

/** What every database layer provides, whichever the driver. */
export type Sql = SqlClient.SqlClient | Notifications

/** What the Postgres layers provide. */
export type Pg = PgClient.PgClient | SqlClient.SqlClient | Notifications | ClaimSession
