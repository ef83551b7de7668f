/**
 * LISTEN/NOTIFY as a service, so the queue does not depend on which driver runs it: `@effect/sql-pg`'s
 * dedicated listener connection, or an embedded PGlite's in-process notifications.
 */
import { PgClient } from "@effect/sql-pg"
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
  static readonly layerPg = Layer.effect(
    Notifications,
    Effect.map(PgClient.PgClient, (pg) => Notifications.of({ listen: (channel) => pg.listen(channel) }))
  )
}
