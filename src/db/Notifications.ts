/**
 * LISTEN/NOTIFY as a service, so the queue does not depend on which driver runs it: a dedicated Postgres
 * connection per channel, or an embedded PGlite's in-process notifications.
 */
import { PgClient, PgConnection } from "@effect/sql-pg"
import { Context, Effect, Layer, type Queue, type Scope } from "effect"
import type { SqlError } from "effect/sql"

export class Notifications extends Context.Service<
  Notifications,
  {
    /** Starts listening on `channel`; notifications arrive in the queue until the scope closes. */
    readonly listen: (
      channel: string
    ) => Effect.Effect<
      Queue.Dequeue<{ readonly payload: string }, SqlError.SqlError>,
      SqlError.SqlError,
      Scope.Scope
    >
  }
>()("jobq/db/Notifications") {
  /**
   * Each listener opens its own session beside the pool (same settings), held until its scope closes.
   * `PgClient.listen` would reserve a pooled connection for as long as it listens: a worker listens on two
   * channels, so with DATABASE_POOL_MAX=2 it held the whole pool and never claimed a job again.
   */
  static readonly layerPg = Layer.effect(
    Notifications,
    Effect.map(PgClient.PgClient, (pg) =>
      Notifications.of({
        listen: (channel) =>
          Effect.flatMap(PgConnection.make(pg.config), (session) => session.listen(channel))
      })
    )
  )
}
