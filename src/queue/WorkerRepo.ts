/**
 * Every SQL statement on the `workers` and `leaders` tables (migrations/0004_queues.sql, 0013): a worker's
 * heartbeat (an upsert that also sets when its row expires and extends the lease it holds over the worker's
 * jobs), its farewell, the listing of live workers, the
 * clean-up of expired rows; and the election of the one maintainer (a lease row). Methods fail with
 * `SqlError` only.
 */
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import type { WorkerInfo } from "../domain/Queues.ts"

export interface Heartbeat {
  readonly id: string
  readonly host: string
  readonly pid: number
  readonly queues: ReadonlyArray<string> | undefined
  readonly concurrency: number
  /** The row leaves listings this long after this heartbeat, unless another comes. */
  readonly ttlMs: number
  /** The row holds the jobs this worker claimed (their lease) this long after this heartbeat. */
  readonly leaseMs: number
  /** The process's first heartbeat: whatever the row held before belongs to an earlier process. */
  readonly first: boolean
}

/** What a heartbeat found. */
export interface Beat {
  /**
   * The row's lease had not run out (and this is not the process's first heartbeat): the jobs claimed
   * since the lease began are still held. False: a new lease began with this heartbeat, and no job claimed
   * before it is held by the row any more (the rescuer takes them back).
   */
  readonly continued: boolean
}

/** Most workers one listing returns. */
export const maxWorkersListed = 1000

const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient

  /**
   * Writes the worker's row: its first heartbeat creates it, later ones refresh it (or recreate it), and
   * extend the lease it holds over the worker's running jobs. A lease that had run out is not extended but
   * begun again (`live_since`): the jobs claimed under the old one may have been rescued, or counted no more
   * against their queue's limit, so they stay lost to the row.
   */
  const beat = (h: Heartbeat) =>
    sql<{ continued: boolean }>`
      INSERT INTO workers AS w (id, host, pid, queues, concurrency, expires_at, lease_expires_at, live_since)
      VALUES (${h.id}, ${h.host}, ${h.pid}, ${h.queues === undefined ? null : [...h.queues]}::text[],
              ${h.concurrency}, now() + ${h.ttlMs} * interval '1 millisecond',
              now() + ${h.leaseMs} * interval '1 millisecond', now())
      ON CONFLICT (id) DO UPDATE SET
        host = EXCLUDED.host, pid = EXCLUDED.pid, queues = EXCLUDED.queues, concurrency = EXCLUDED.concurrency,
        heartbeat_at = now(), expires_at = EXCLUDED.expires_at, lease_expires_at = EXCLUDED.lease_expires_at,
        live_since = CASE WHEN NOT ${h.first} AND w.lease_expires_at > now() THEN w.live_since ELSE now() END,
        started_at = CASE WHEN w.pid = EXCLUDED.pid AND w.host = EXCLUDED.host THEN w.started_at ELSE now() END
      RETURNING w.live_since < now() AS continued`.pipe(
      Effect.map((rows): Beat => ({ continued: rows[0]?.continued === true }))
    )

  /** The worker stopped: its row goes at once. */
  const farewell = (id: string) => sql`DELETE FROM workers WHERE id = ${id}`.pipe(Effect.asVoid)

  /**
   * Workers whose row has not expired, with the jobs each holds a lease on now, counted when asked (one pass
   * over the running jobs' partial index).
   */
  const list = sql<WorkerInfo>`
    WITH live AS (
      SELECT * FROM workers WHERE expires_at > now() ORDER BY id LIMIT ${maxWorkersListed}
    ), leased AS (
      SELECT lease_owner, count(*)::integer AS n FROM jobs
      WHERE status = 'running' AND lease_owner IN (SELECT id FROM live)
      GROUP BY lease_owner
    )
    SELECT w.id, w.host, w.pid, w.queues, w.concurrency, w.started_at AS "startedAt",
           w.heartbeat_at AS "lastHeartbeatAt", w.expires_at AS "expiresAt", coalesce(l.n, 0) AS running
    FROM live w LEFT JOIN leased l ON l.lease_owner = w.id
    ORDER BY w.id`

  /**
   * Deletes the rows of workers that stopped heartbeating, once their lease ran out too (the listing's expiry
   * comes first with the defaults); answers their ids.
   */
  const deleteExpired = sql<{ id: string }>`
    DELETE FROM workers
    WHERE expires_at <= now() AND (lease_expires_at IS NULL OR lease_expires_at <= now())
    RETURNING id`.pipe(Effect.map((rows) => rows.map((r) => r.id)))

  /**
   * Takes or renews `role` for `holder` until `ttlMs` from now: succeeds when `holder` holds it already or
   * its lease expired (or nobody ever held it). Answers whether `holder` holds it now.
   */
  const elect = (role: string, holder: string, ttlMs: number) =>
    sql<{ holder: string }>`
      INSERT INTO leaders AS l (role, holder, expires_at)
      VALUES (${role}, ${holder}, now() + ${ttlMs} * interval '1 millisecond')
      ON CONFLICT (role) DO UPDATE SET
        holder = EXCLUDED.holder,
        elected_at = CASE WHEN l.holder = EXCLUDED.holder THEN l.elected_at ELSE now() END,
        renewed_at = now(),
        expires_at = EXCLUDED.expires_at
      WHERE l.holder = EXCLUDED.holder OR l.expires_at < now()
      RETURNING l.holder`.pipe(Effect.map((rows) => rows.length > 0))

  /** Gives `role` up at once, if `holder` holds it (a worker that stops), so another may take it. */
  const resign = (role: string, holder: string) =>
    sql`DELETE FROM leaders WHERE role = ${role} AND holder = ${holder}`.pipe(Effect.asVoid)

  return { beat, farewell, list, deleteExpired, elect, resign }
})

export class WorkerRepo extends Context.Service<WorkerRepo, Effect.Success<typeof make>>()(
  "jobq/WorkerRepo"
) {
  static readonly layer = Layer.effect(WorkerRepo, make)
}
