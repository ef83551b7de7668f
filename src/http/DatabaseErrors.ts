/**
 * A database that cannot be reached is the client's cue to retry, not a server bug: connection and
 * authentication failures and the transient reasons (deadlock, lock or statement timeout, serialization)
 * become a 503 `DatabaseUnavailable`. Any other `SqlError` is a defect, answered 500 and logged.
 */
import { Effect } from "effect"
import { SqlError } from "effect/sql"
import { DatabaseUnavailable } from "./Problems.ts"

const unavailableReasons = new Set(["ConnectionError", "AuthenticationError"])

/** The problem for a SqlError the client may retry after, or undefined when it is a defect. */
export const toUnavailable = (error: SqlError.SqlError): DatabaseUnavailable | undefined =>
  unavailableReasons.has(error.reason._tag) || error.isRetryable
    ? new DatabaseUnavailable({
        detail: `the database did not answer (${error.reason._tag}); retry later`
      })
    : undefined

export const orUnavailable = <A, E, R>(
  self: Effect.Effect<A, E | SqlError.SqlError, R>
): Effect.Effect<A, Exclude<E, SqlError.SqlError> | DatabaseUnavailable, R> =>
  Effect.catchIf(
    self,
    (error): error is SqlError.SqlError => SqlError.isSqlError(error),
    (error) => {
      const problem = toUnavailable(error)
      return problem === undefined ? Effect.die(error) : Effect.fail(problem)
    }
  ) as Effect.Effect<A, Exclude<E, SqlError.SqlError> | DatabaseUnavailable, R>
