/**
 * A pool of one connection for a worker's claims, on which a claim is written while the one before it still
 * runs (pipelining). Postgres reads a connection's statements in order and runs each in its own transaction,
 * so the claims run one after the other, every one on a snapshot taken after the one before committed: the
 * order of a single claim stream, without the round trip and the worker's reading of the rows between two
 * claims (docs/tradeoffs.md, "Claims in flight"). A pool rather than a bare connection, so that a broken
 * connection is replaced.
 *
 * The order holds because the driver writes a connection's statements in the order they were submitted and
 * the worker submits one claim at a time. One exception: a prepared statement the server no longer has a
 * valid plan for (a migration changed `jobs` while the worker ran) fails before it claims anything and the
 * driver sends it again, behind the claim already written after it; once after such a change, those two
 * may run in the other order.
 *
 * Provided by the Postgres layers (`Database.layer`, `layerUrl`) except behind a transaction pooler, which
 * hands each transaction to whichever server session is free; the embedded database has none. Without it a
 * worker claims one statement at a time on its pool.
 */
import { PgClient } from "@effect/sql-pg"
import { Context, Effect, Layer, type Scope } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import type { SqlClient, SqlError } from "effect/sql"

export class ClaimSession extends Context.Service<
  ClaimSession,
  {
    /** Opens the session in the caller's scope, with up to `statements` statements on the wire at once. */
    readonly open: (statements: number) => Effect.Effect<SqlClient.SqlClient, SqlError.SqlError, Scope.Scope>
  }
>()("jobq/ClaimSession") {
  /** With the settings of the pool it stands beside (its URL, name, bounds, prepared statements). */
  static readonly layerPg = (options: PgClient.PgPoolConfig) =>
    Layer.succeed(ClaimSession, {
      open: (statements) =>
        PgClient.make({
          ...options,
          maxConnections: 1,
          minConnections: 0,
          multiplex: true,
          multiplexConcurrency: statements
        }).pipe(Effect.provide(Reactivity.layer))
    })
}
