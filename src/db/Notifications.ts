/**
 * LISTEN/NOTIFY as a service, so the queue does not depend on which driver runs it: a dedicated Postgres
 * connection per channel, or an embedded PGlite's in-process notifications. And the gates of
 * migrations/0008_events.sql: the database notifies finished jobs, and writes the event log, only while
 * some session holds (or waits for) the gate's advisory lock.
 */
import { PgClient, PgConnection } from "@effect/sql-pg"
import { Cause, Context, Deferred, Duration, Effect, Layer, type Queue, Schedule, type Scope } from "effect"
import type { SqlError } from "effect/sql"

/** The gates of migrations/0008: `finished` wakes waiters, `events` writes the event log. */
export const gates = { finished: 1, events: 2 } as const
export type Gate = keyof typeof gates
/** The advisory lock's first key (its second is the gate's number). */
export const gateKey = 1785684594

/** A gate held open until its scope closes. */
export interface HeldGate {
  /**
   * Whether no other session held the gate when this one opened it: events (or notifications) may be
   * missing from before (the gate was closed). False when another session held it all along.
   */
  readonly reopened: boolean
  /** Completes if the session holding the gate is lost (the gate may have closed meanwhile). */
  readonly lost: Effect.Effect<void>
}

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
    /**
     * Opens `gate` until the scope closes. Once it succeeds, every transaction that changes a job from then
     * on notifies (or writes its events), and every one that may have skipped has ended.
     */
    readonly hold: (gate: Gate) => Effect.Effect<HeldGate, SqlError.SqlError, Scope.Scope>
  }
>()("jobq/db/Notifications") {
  /**
   * Each listener opens its own session beside the pool (the pool's settings with `sessions` over them:
   * DATABASE_LISTEN_URL's address, no pipelining), held until its scope closes.
   * `PgClient.listen` would reserve a pooled connection for as long as it listens: a worker listens on two
   * channels, so with DATABASE_POOL_MAX=2 it held the whole pool and never claimed a job again.
   *
   * A gate is held the same way, by a session of its own that asks for the advisory lock and keeps it: it
   * may wait behind another process that holds it, which keeps the gate open as well (a session waiting in
   * exclusive mode makes every shared try fail).
   */
  static readonly layerPg = (sessions: Partial<PgConnection.Config> = {}) =>
    Layer.effect(
      Notifications,
      Effect.map(PgClient.PgClient, (pg) => Notifications.make({ ...pg.config, ...sessions }, pg))
    )

  /**
   * Sessions opened with `config` (the pool's settings, or DATABASE_LISTEN_URL's: behind a transaction-mode
   * pooler they must reach Postgres itself or a session-mode pool); `pg` looks at the lock table.
   */
  static readonly make = (config: PgConnection.Config, pg: PgClient.PgClient) =>
    Notifications.of({
      listen: (channel) => Effect.flatMap(PgConnection.make(config), (session) => session.listen(channel)),
      hold: (gate) =>
        Effect.gen(function* () {
          const session = yield* PgConnection.make(config)
          const lost = yield* Deferred.make<void>()
          const granted = yield* Deferred.make<void>()
          // closed: the gate closes now, not when the server notices the session ended
          yield* Effect.addFinalizer(() =>
            session
              .query("SELECT pg_advisory_unlock($1, $2)", [gateKey, gates[gate]])
              .pipe(Effect.timeout("1 second"), Effect.ignore)
          )
          // the server's bounds on statements and lock waits (DATABASE_LOCK_TIMEOUT, or the role's own
          // settings behind a pooler) are not for this session, which may wait for as long as another process
          // holds the gate. Its backend's pid is asked for, not taken from the session's key data: through a
          // session-mode pooler that key is the pooler's own
          const [{ pid }] = (yield* session.query(
            "SELECT pg_backend_pid() AS pid, set_config('lock_timeout', '0', false), set_config('statement_timeout', '0', false)"
          )).rows as unknown as [{ readonly pid: number }]
          // granted at once, or after the holders of the shared lock end, or when another holder lets go
          yield* session.query("SELECT pg_advisory_lock($1, $2)", [gateKey, gates[gate]]).pipe(
            Effect.andThen(Deferred.succeed(granted, undefined)),
            Effect.andThen(
              // then a look every 5 s that the session (and its lock) is still there
              session.query("SELECT 1").pipe(Effect.repeat(Schedule.spaced("5 seconds")))
            ),
            Effect.catchCause((cause) =>
              Cause.hasInterruptsOnly(cause) ? Effect.void : Deferred.succeed(lost, undefined)
            ),
            Effect.forkScoped
          )
          // open once our request is queued or granted and no session holds the lock in shared mode
          const look = pg.unsafe<{
            readonly queued: boolean
            readonly shared: boolean
            readonly other: boolean
          }>(
            `SELECT coalesce(bool_or(pid = $3), false) AS queued,
                      coalesce(bool_or(mode = 'ShareLock' AND granted), false) AS shared,
                      coalesce(bool_or(pid <> $3 AND mode = 'ExclusiveLock' AND granted), false) AS other
               FROM pg_locks
               WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                 AND classid = $1 AND objid = $2 AND objsubid = 2`,
            [gateKey, gates[gate], pid]
          )
          const polled = look.pipe(
            Effect.map((rows) => rows[0]!),
            Effect.repeat({
              until: (s) => s.queued && !s.shared,
              schedule: Schedule.spaced("2 millis")
            })
          )
          // usually granted within milliseconds (only transactions that skipped the gate hold it up); the
          // lock table is looked at only when another process holds the gate (then our request waits)
          const state = yield* Effect.raceFirst(
            Effect.as(Deferred.await(granted), { other: false }),
            Effect.andThen(Effect.sleep("50 millis"), polled)
          ).pipe(
            Effect.timeoutOrElse({
              duration: Duration.seconds(30),
              orElse: () => Effect.die(new Error(`the ${gate} gate did not open within 30 s`))
            })
          )
          return { reopened: !state.other, lost: Deferred.await(lost) }
        })
    })
}
