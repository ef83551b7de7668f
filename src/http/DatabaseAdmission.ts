/**
 * How a request's database work is bounded in time without ever making a 503 a lie.
 *
 * A statement, once sent, is never given up on by the API: on a pipelined connection an interrupted
 * statement still runs (the driver can only stop waiting for it; a cancel would hit whichever statement the
 * backend is running), and an insert given up on after the answer 503 committed when its lock was released.
 * Postgres bounds every statement instead (`statement_timeout`, `lock_timeout`, set for the API's sessions):
 * past them it cancels and rolls back the statement itself, and the request is answered 503 knowing that
 * nothing changed.
 *
 * What the API bounds is the wait before anything is sent: a request takes a place among the statements the
 * pool can carry at once (its connections times the statements each may pipeline) and waits at most
 * `API_DATABASE_ACQUIRE_TIMEOUT` for one. Past that it is answered 503 having sent nothing. Holding a place,
 * its statements find a connection without queueing behind other requests for the pool.
 */
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Option, Semaphore } from "effect"
import type { SqlError } from "effect/sql"
import { ApiConfig } from "../Config.ts"
import { orUnavailable } from "./DatabaseErrors.ts"
import { DatabaseUnavailable } from "./Problems.ts"

/** Statements the pool carries at once: each connection, times what it pipelines. */
const capacityOf = (config: PgClient.PgPoolConfig) =>
  (config.maxConnections ?? 10) *
  (config.multiplex === true ? Math.max(1, config.multiplexConcurrency ?? 32) : 1)

/** Runs a request's database work: admitted, then mapped. */
export type Guard = <A, E, R>(
  work: Effect.Effect<A, E | SqlError.SqlError, R>
) => Effect.Effect<A, Exclude<E, SqlError.SqlError> | DatabaseUnavailable, R>

/**
 * Admission to `capacity` places: a request runs at once while a place is free (no timer, no fiber);
 * otherwise it waits for one, racing `timeout`, which gives up only while the request still waits: once
 * admitted, the work runs to its end. A permit is taken and its release registered in one step
 * (`withPermits`), so giving up never leaks one.
 */
export const admission = (capacity: number, timeout: Duration.Duration) => {
  const places = Semaphore.makeUnsafe(capacity)
  const full = Effect.fail(
    new DatabaseUnavailable({
      detail: `no connection to the database came free within ${Duration.format(timeout)} (every place in the pool is taken); nothing was sent; retry later`
    })
  )
  const waitForPlace = <A, E, R>(work: Effect.Effect<A, E, R>) =>
    Effect.suspend(() => {
      let admitted = false
      return Effect.raceFirst(
        places.withPermits(1)(
          Effect.suspend(() => {
            admitted = true
            return work
          })
        ),
        Effect.sleep(timeout).pipe(Effect.andThen(Effect.suspend(() => (admitted ? Effect.never : full))))
      )
    })
  return <A, E, R>(work: Effect.Effect<A, E, R>): Effect.Effect<A, E | DatabaseUnavailable, R> =>
    Effect.flatMap(places.withPermitsIfAvailable(1)(work), (ran) =>
      Option.isSome(ran) ? Effect.succeed(ran.value) : waitForPlace(work)
    )
}

/**
 * The guard every database-backed handler runs its work through: admission, then the work unbounded by the
 * API (the database bounds it), its `SqlError`s mapped by `orUnavailable`. Without a Postgres pool (the
 * embedded driver, one in-process connection) there is no lock to wait on and no admission.
 */
export const make: Effect.Effect<Guard, never, ApiConfig> = Effect.gen(function* () {
  const { databaseAcquireTimeout } = yield* ApiConfig
  const pg = yield* Effect.serviceOption(PgClient.PgClient)
  if (Option.isNone(pg)) return orUnavailable
  const admit = admission(capacityOf(pg.value.config), databaseAcquireTimeout)
  const guard: Guard = (work) => orUnavailable(admit(work))
  return guard
})
