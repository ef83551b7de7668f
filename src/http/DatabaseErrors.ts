/**
 * A database that cannot be reached is the client's cue to retry, not a server bug: connection and
 * authentication failures and the transient reasons (deadlock, lock or statement timeout, serialization)
 * become a 503 `DatabaseUnavailable`. Any other `SqlError` is a defect, answered 500 and logged.
 *
 * A request's database work is also bounded in time (`databaseDeadline`): with every pooled connection busy
 * or blocked on a lock, a request would otherwise wait for one without end, and Bun closes a connection that
 * stays silent for 10 seconds without sending any answer. Past the deadline the work is interrupted (a
 * running statement is cancelled, a transaction rolled back) and the client gets a 503 that says why.
 */
import { Duration, Effect } from "effect"
import { SqlError } from "effect/sql"
import { DatabaseUnavailable } from "./Problems.ts"

const unavailableReasons = new Set(["ConnectionError", "AuthenticationError"])

/**
 * SQLSTATEs the driver reports as `UnknownError` that still mean "the server cannot serve you now": class 53
 * (insufficient resources: 53300 too many connections, out of memory, disk full) and 57P01-57P03 (the
 * session was terminated by an administrator or a shutdown, or the server is starting up or shutting down).
 * Seen under load: "sorry, too many clients already" on connect was answered 500.
 */
const sqlState = (error: SqlError.SqlError): string | undefined => {
  const code = (error.reason.cause as { readonly code?: unknown } | undefined)?.code
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined
}
const transientState = (code: string | undefined) =>
  code !== undefined && (code.startsWith("53") || code === "57P01" || code === "57P02" || code === "57P03")

/** The problem for a SqlError the client may retry after, or undefined when it is a defect. */
export const toUnavailable = (error: SqlError.SqlError): DatabaseUnavailable | undefined => {
  const code = sqlState(error)
  return unavailableReasons.has(error.reason._tag) || error.isRetryable || transientState(code)
    ? new DatabaseUnavailable({
        detail: `the database did not answer (${error.reason._tag}${code === undefined ? "" : ` ${code}`}); retry later`
      })
    : undefined
}

/** How long one request may wait for a connection and its statements; under Bun's 10 s idle timeout. */
export const databaseDeadline = Duration.seconds(8)

const deadlinePassed = () =>
  Effect.fail(
    new DatabaseUnavailable({
      detail: `the database did not answer within ${Duration.format(databaseDeadline)}: every connection of the pool is busy, or a statement waits on a lock; retry later`
    })
  )

export const orUnavailable = <A, E, R>(
  self: Effect.Effect<A, E | SqlError.SqlError, R>
): Effect.Effect<A, Exclude<E, SqlError.SqlError> | DatabaseUnavailable, R> =>
  Effect.catchIf(
    self.pipe(Effect.timeoutOrElse({ duration: databaseDeadline, orElse: deadlinePassed })),
    (error): error is SqlError.SqlError => SqlError.isSqlError(error),
    (error) => {
      const problem = toUnavailable(error)
      return problem === undefined ? Effect.die(error) : Effect.fail(problem)
    }
  ) as Effect.Effect<A, Exclude<E, SqlError.SqlError> | DatabaseUnavailable, R>
