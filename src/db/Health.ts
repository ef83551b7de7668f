/**
 * The health probe both programs answer `/health` with: one `SELECT 1`, bounded in time. It fails with the
 * reason in words (for the 503's body) and logs the driver's message, which may name hosts, only at WARN.
 */
import { Data, Effect } from "effect"
import type { SqlClient } from "effect/sql"

export class DatabaseDown extends Data.TaggedError("DatabaseDown")<{ readonly reason: string }> {}

export const timeout = "2 seconds"

/** Succeeds when the database answers `SELECT 1` within `timeout` (the client is resolved by the caller). */
export const probe = (sql: SqlClient.SqlClient) =>
  sql`SELECT 1`.pipe(
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => Effect.fail(new DatabaseDown({ reason: `the database did not answer within ${timeout}` }))
    }),
    Effect.catchTag("SqlError", (error) =>
      Effect.logWarning(`health: the database did not answer: ${error.message}`).pipe(
        Effect.andThen(
          Effect.fail(new DatabaseDown({ reason: `the database did not answer (${error.reason._tag})` }))
        )
      )
    ),
    Effect.asVoid
  )
