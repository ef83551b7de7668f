/**
 * A database that cannot serve a request now is the client's cue to retry, not a server bug: any failure to
 * get a connection (whatever the server said: refused, unknown database, bad credentials, not accepting
 * connections, too many clients, shutting down), a lost connection, and the transient reasons (deadlock,
 * lock or statement timeout, serialization) become a 503 `DatabaseUnavailable`. Any other `SqlError` is a
 * defect of a statement, answered 500 and logged.
 *
 * A statement that timed out was cancelled and rolled back by Postgres itself (`statement_timeout`,
 * `lock_timeout`), so its 503 means that nothing changed. How long a request may wait before its statements
 * are sent is `DatabaseAdmission`'s business.
 */
import { Effect } from "effect"
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

/**
 * A failure while opening a session: no statement of the request ran. The server may refuse with any
 * SQLSTATE (55000 "database is not accepting connections", 3D000 "database does not exist", 28P01 ...);
 * each means the same to the client.
 */
const whileConnecting = (error: SqlError.SqlError) => error.reason.operation === "connect"

const explain = (error: SqlError.SqlError, code: string | undefined) => {
  const reason = `${error.reason._tag}${code === undefined ? "" : ` ${code}`}`
  switch (error.reason._tag) {
    case "LockTimeoutError":
      return `a statement waited too long for a lock another session holds (${reason}); the database cancelled it and nothing changed; retry later`
    case "StatementTimeoutError":
      return `a statement took too long (${reason}); the database cancelled it and nothing changed; retry later`
    default:
      return whileConnecting(error)
        ? `could not connect to the database (${reason}); retry later`
        : `the database did not answer (${reason}); retry later`
  }
}

/** The problem for a SqlError the client may retry after, or undefined when it is a defect. */
export const toUnavailable = (error: SqlError.SqlError): DatabaseUnavailable | undefined => {
  const code = sqlState(error)
  return whileConnecting(error) ||
    unavailableReasons.has(error.reason._tag) ||
    error.isRetryable ||
    transientState(code)
    ? new DatabaseUnavailable({ detail: explain(error, code) })
    : undefined
}

/** Maps the `SqlError`s of `self`: the retryable ones to a 503 problem, the rest to defects (500). */
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
