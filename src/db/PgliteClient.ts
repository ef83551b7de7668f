/**
 * An `effect/sql` client over one embedded PGlite instance (Postgres compiled to WebAssembly), for the
 * zero-setup mode. Modelled on Effect's single-connection SQLite drivers: one connection, a semaphore,
 * transactions hold it. It speaks the same SQL dialect as `@effect/sql-pg` (same statement compiler), and
 * LISTEN/NOTIFY map to PGlite's in-process notifications, so the queue runs on it unchanged.
 */

import { PgClient } from "@effect/sql-pg"
import type { PGlite } from "@electric-sql/pglite"
import { Context, Effect, Layer, Queue, Semaphore, Stream } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import { SqlClient, type SqlConnection, SqlError } from "effect/sql"
import { type Gate, Notifications } from "./Notifications.ts"

const reasonOf = (cause: unknown, operation: string): SqlError.SqlErrorReason => {
  const code = (cause as { code?: unknown })?.code
  const message = cause instanceof Error ? cause.message : String(cause)
  const options = { cause, message, operation }
  if (code === "23505") {
    const constraint = (cause as { constraint?: unknown })?.constraint
    return new SqlError.UniqueViolation({
      ...options,
      constraint: typeof constraint === "string" ? constraint : ""
    })
  }
  if (typeof code === "string" && code.startsWith("23")) return new SqlError.ConstraintError(options)
  if (typeof code === "string" && code.startsWith("42")) return new SqlError.SqlSyntaxError(options)
  if (code === "40P01") return new SqlError.DeadlockError(options)
  if (code === "40001") return new SqlError.SerializationError(options)
  return new SqlError.UnknownError(options)
}

const fail = (operation: string) => (cause: unknown) =>
  new SqlError.SqlError({ reason: reasonOf(cause, operation) })

export interface PgliteSql {
  readonly sql: SqlClient.SqlClient
  readonly notifications: Notifications["Service"]
}

/** A client and a notification source over `db`; closing the scope does not close `db`. */
export const make = (db: PGlite) =>
  Effect.gen(function* () {
    const query = (sql: string, params: ReadonlyArray<unknown>) =>
      Effect.tryPromise({
        try: () => db.query<Record<string, unknown>>(sql, params as Array<unknown>),
        catch: fail("query")
      })
    const rows = (sql: string, params: ReadonlyArray<unknown>) =>
      Effect.map(query(sql, params), (r) => r.rows)
    const values = (sql: string, params: ReadonlyArray<unknown>) =>
      Effect.tryPromise({
        try: () => db.query<Array<unknown>>(sql, params as Array<unknown>, { rowMode: "array" }),
        catch: fail("query")
      }).pipe(Effect.map((r) => r.rows))

    const connection: SqlConnection.Connection = {
      execute: (sql, params, transformRows) =>
        transformRows ? Effect.map(rows(sql, params), transformRows) : rows(sql, params),
      executeRaw: (sql, params) => query(sql, params),
      executeValues: values,
      executeValuesUnprepared: values,
      executeUnprepared: (sql, params, transformRows) =>
        transformRows ? Effect.map(rows(sql, params), transformRows) : rows(sql, params),
      executeStream: (sql, params, transformRows) =>
        Stream.fromIterableEffect(
          transformRows ? Effect.map(rows(sql, params), transformRows) : rows(sql, params)
        )
    }

    const { acquirer, transactionAcquirer, onCommitFailure } = SqlClient.makeSqliteAcquirers({
      connection: Effect.succeed(connection),
      semaphore: yield* Semaphore.make(1)
    })
    const sql = yield* SqlClient.make({
      acquirer,
      compiler: PgClient.makeCompiler(),
      transactionAcquirer,
      onCommitFailure,
      spanAttributes: [["db.system.name", "postgresql"]],
      driver: "pglite"
    } as SqlClient.SqlClient.MakeOptions)

    const held: Record<Gate, number> = { finished: 0, events: 0 }
    const notifications = Notifications.of({
      listen: (channel) =>
        Effect.gen(function* () {
          const queue = yield* Queue.unbounded<{ readonly payload: string }, SqlError.SqlError>()
          yield* Effect.acquireRelease(
            Effect.tryPromise({
              try: () => db.listen(channel, (payload) => Queue.offerUnsafe(queue, { payload })),
              catch: fail("listen")
            }),
            (unsubscribe) => Effect.promise(() => unsubscribe())
          )
          return queue
        }),
      // one session: a gate is a setting of it, on while anyone holds the gate
      hold: (gate) =>
        Effect.acquireRelease(
          Effect.suspend(() =>
            (held[gate]++ === 0 ? sql.unsafe(`SET jobq.${gate} = 'open'`) : Effect.void).pipe(
              Effect.as({ reopened: held[gate] === 1, lost: Effect.never })
            )
          ),
          () =>
            Effect.suspend(() => (--held[gate] === 0 ? sql.unsafe(`RESET jobq.${gate}`) : Effect.void)).pipe(
              Effect.ignore
            )
        )
    })

    return { sql, notifications } satisfies PgliteSql
  }).pipe(Effect.provide(Reactivity.layer))

/** `SqlClient` and `Notifications` over one PGlite instance created by `open` and closed with the layer. */
export const layer = (open: () => Promise<PGlite>) =>
  Layer.effectContext(
    Effect.gen(function* () {
      const db = yield* Effect.acquireRelease(Effect.tryPromise({ try: open, catch: fail("open") }), (db) =>
        Effect.promise(() => db.close())
      )
      const { sql, notifications } = yield* make(db)
      return Context.make(SqlClient.SqlClient, sql).pipe(Context.add(Notifications, notifications))
    })
  )
