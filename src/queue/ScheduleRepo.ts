/**
 * Every SQL statement on `schedules` and `schedule_fires` (migrations/0006_schedules.sql). The guarantee
 * of one job per (schedule, slot) is `fireSlot`: the slot's row in `schedule_fires` and its job are
 * inserted by one statement, the job only when the row was new, so two processes firing the same slot at
 * once make one job (the second insert meets the primary key). Methods fail with `SqlError` only; the rules
 * live in `ScheduleControl` and `Scheduler`.
 */
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import type { CatchUp, Overlap } from "../domain/Schedule.ts"

export interface ScheduleRow {
  readonly name: string
  readonly expression: string
  readonly timeZone: string
  readonly kind: string
  readonly payload: unknown
  readonly queue: string
  readonly priority: number
  readonly maxAttempts: number
  readonly catchUp: CatchUp
  readonly backfillMs: number
  readonly overlap: Overlap
  readonly source: "code" | "api"
  readonly pausedAt: Date | null
  readonly pausedBy: string | null
  readonly pauseReason: string | null
  readonly cursorAt: Date
  readonly nextAt: Date | null
  readonly lastJobId: string | null
  readonly lastSlot: Date | null
  /** The last job's status now; null when there is none or it was pruned. */
  readonly lastStatus: string | null
  readonly createdAt: Date
  readonly updatedAt: Date
}

/** What a definition writes (the rules resolved every default). */
export interface ScheduleWrite {
  readonly name: string
  readonly expression: string
  readonly timeZone: string
  readonly kind: string
  readonly payload: unknown
  readonly queue: string
  readonly priority: number
  readonly maxAttempts: number
  readonly catchUp: CatchUp
  readonly backfillMs: number
  readonly overlap: Overlap
  readonly source: "code" | "api"
  readonly cursorAt: Date
  readonly nextAt: Date | null
}

/** Rows the maintainer deletes from `schedule_fires` per statement at most. */
export const firesPruneBatch = 1000
/** A fire's row is kept this long after its slot: one day beyond the widest backfill window (7 days). */
export const firesKeepMs = 8 * 24 * 3600 * 1000

const busyStatuses = ["queued", "retrying", "running"]

const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient

  const columns = sql`
    s.name, s.expression, s.time_zone AS "timeZone", s.kind, s.payload, s.queue, s.priority,
    s.max_attempts AS "maxAttempts", s.catch_up AS "catchUp", s.backfill_ms::integer AS "backfillMs",
    s.overlap, s.source, s.paused_at AS "pausedAt", s.paused_by AS "pausedBy", s.pause_reason AS "pauseReason",
    s.cursor_at AS "cursorAt", s.next_at AS "nextAt", s.last_job_id::text AS "lastJobId", s.last_slot AS "lastSlot",
    (SELECT j.status FROM jobs j WHERE j.id = s.last_job_id) AS "lastStatus",
    s.created_at AS "createdAt", s.updated_at AS "updatedAt"`

  /** Up to `limit` schedules in name order, after `after` when given. */
  const list = (limit: number, after?: string) =>
    sql<ScheduleRow>`
      SELECT ${columns} FROM schedules s
      ${after === undefined ? sql`` : sql`WHERE s.name > ${after}`}
      ORDER BY s.name LIMIT ${limit}`

  const get = (name: string) =>
    sql<ScheduleRow>`SELECT ${columns} FROM schedules s WHERE s.name = ${name}`.pipe(
      Effect.map((rows) => rows[0])
    )

  /** The schedule, its row locked until the transaction ends (the caller's). */
  const getForUpdate = (name: string) =>
    sql<ScheduleRow>`SELECT ${columns} FROM schedules s WHERE s.name = ${name} FOR UPDATE`.pipe(
      Effect.map((rows) => rows[0])
    )

  /** Inserts the schedule or replaces its definition; a pause stays as it is. */
  const upsert = (w: ScheduleWrite) =>
    sql`
      INSERT INTO schedules AS s (name, expression, time_zone, kind, payload, queue, priority, max_attempts,
                                  catch_up, backfill_ms, overlap, source, cursor_at, next_at)
      VALUES (${w.name}, ${w.expression}, ${w.timeZone}, ${w.kind}, ${JSON.stringify(w.payload)}::jsonb,
              ${w.queue}, ${w.priority}, ${w.maxAttempts}, ${w.catchUp}, ${w.backfillMs}, ${w.overlap},
              ${w.source}, ${w.cursorAt}, ${w.nextAt})
      ON CONFLICT (name) DO UPDATE SET
        expression = EXCLUDED.expression, time_zone = EXCLUDED.time_zone, kind = EXCLUDED.kind,
        payload = EXCLUDED.payload, queue = EXCLUDED.queue, priority = EXCLUDED.priority,
        max_attempts = EXCLUDED.max_attempts, catch_up = EXCLUDED.catch_up,
        backfill_ms = EXCLUDED.backfill_ms, overlap = EXCLUDED.overlap, source = EXCLUDED.source,
        cursor_at = greatest(s.cursor_at, EXCLUDED.cursor_at), next_at = EXCLUDED.next_at,
        updated_at = CASE WHEN (s.expression, s.time_zone, s.kind, s.payload, s.queue, s.priority,
                                s.max_attempts, s.catch_up, s.backfill_ms, s.overlap, s.source)
                            IS DISTINCT FROM
                               (EXCLUDED.expression, EXCLUDED.time_zone, EXCLUDED.kind, EXCLUDED.payload,
                                EXCLUDED.queue, EXCLUDED.priority, EXCLUDED.max_attempts, EXCLUDED.catch_up,
                                EXCLUDED.backfill_ms, EXCLUDED.overlap, EXCLUDED.source)
                          THEN now() ELSE s.updated_at END`.pipe(Effect.asVoid)

  /** Deletes the schedule and its fires; answers whether it existed. */
  const remove = (name: string) =>
    sql<{ name: string }>`DELETE FROM schedules WHERE name = ${name} RETURNING name`.pipe(
      Effect.map((rows) => rows.length > 0)
    )

  /** Pauses it (a paused one keeps its pause time, and its reason and author unless new ones are given). */
  const pause = (name: string, reason: string | null, by: string | null) =>
    sql`
      UPDATE schedules SET
        paused_at = coalesce(paused_at, now()),
        paused_by = CASE WHEN paused_at IS NULL THEN ${by} ELSE coalesce(${by}, paused_by) END,
        pause_reason = CASE WHEN paused_at IS NULL THEN ${reason} ELSE coalesce(${reason}, pause_reason) END,
        updated_at = now()
      WHERE name = ${name}`.pipe(Effect.asVoid)

  /** Resumes it from `cursorAt` on: the slots of the pause are not caught up. */
  const resume = (name: string, cursorAt: Date, nextAt: Date | null) =>
    sql`
      UPDATE schedules SET paused_at = NULL, paused_by = NULL, pause_reason = NULL, updated_at = now(),
        cursor_at = greatest(cursor_at, ${cursorAt}), next_at = ${nextAt}
      WHERE name = ${name}`.pipe(Effect.asVoid)

  /** Names of unpaused schedules with a slot due at `now`, earliest first. */
  const due = (now: Date, limit: number) =>
    sql<{ name: string }>`
      SELECT name FROM schedules WHERE paused_at IS NULL AND next_at <= ${now}
      ORDER BY next_at LIMIT ${limit}`.pipe(Effect.map((rows) => rows.map((r) => r.name)))

  /**
   * The schedule if it is still due and unpaused, its row locked until the transaction ends; undefined when
   * another tick holds it (that tick handles it) or it is no longer due.
   */
  const lockDue = (name: string, now: Date) =>
    sql<ScheduleRow>`
      SELECT ${columns} FROM schedules s
      WHERE s.name = ${name} AND s.paused_at IS NULL AND s.next_at <= ${now}
      FOR UPDATE SKIP LOCKED`.pipe(Effect.map((rows) => rows[0]))

  /** Whether the job is queued, retrying or running. */
  const isBusy = (jobId: string) =>
    sql<{ busy: boolean }>`
      SELECT EXISTS (SELECT 1 FROM jobs WHERE id = ${jobId}::uuid AND status IN ${sql.in(busyStatuses)}) AS busy`.pipe(
      Effect.map((rows) => rows[0]?.busy ?? false)
    )

  /**
   * Fires one slot: records it and enqueues the schedule's job (run_at = the slot), in one statement. The
   * job is inserted only when the slot's row is new: a slot fired before (by anyone, at any time within
   * `firesKeepMs`) answers undefined and enqueues nothing.
   */
  const fireSlot = (name: string, slot: Date) =>
    sql<{ id: string }>`
      WITH fire AS (
        INSERT INTO schedule_fires (schedule, slot, outcome, job_id)
        VALUES (${name}, ${slot}, 'enqueued', jobq_uuidv7())
        ON CONFLICT DO NOTHING
        RETURNING job_id
      )
      INSERT INTO jobs (id, queue, kind, payload, priority, max_attempts, run_at)
      SELECT fire.job_id, s.queue, s.kind, s.payload, s.priority, s.max_attempts, ${slot}
      FROM fire JOIN schedules s ON s.name = ${name}
      RETURNING id::text`.pipe(Effect.map((rows) => rows[0]?.id))

  /** Records a slot skipped because the previous run is still going; answers whether it was new. */
  const skipSlot = (name: string, slot: Date) =>
    sql<{ slot: Date }>`
      INSERT INTO schedule_fires (schedule, slot, outcome) VALUES (${name}, ${slot}, 'skipped_overlap')
      ON CONFLICT DO NOTHING RETURNING slot`.pipe(Effect.map((rows) => rows.length > 0))

  /** Moves the cursor forward (never back) and records the latest run. */
  const advance = (
    name: string,
    cursorAt: Date,
    nextAt: Date | null,
    lastRun: { readonly jobId: string; readonly slot: Date | null } | undefined
  ) =>
    sql`
      UPDATE schedules SET cursor_at = greatest(cursor_at, ${cursorAt}), next_at = ${nextAt}
        ${lastRun === undefined ? sql`` : sql`, last_job_id = ${lastRun.jobId}::uuid, last_slot = ${lastRun.slot}`}
      WHERE name = ${name}`.pipe(Effect.asVoid)

  /** Enqueues one run now, outside any slot (a trigger), and records it as the latest run. */
  const trigger = (name: string) =>
    sql<{ id: string }>`
      WITH job AS (
        INSERT INTO jobs (queue, kind, payload, priority, max_attempts)
        SELECT s.queue, s.kind, s.payload, s.priority, s.max_attempts FROM schedules s WHERE s.name = ${name}
        RETURNING id
      ), recorded AS (
        UPDATE schedules SET last_job_id = job.id, last_slot = NULL FROM job WHERE name = ${name}
      )
      SELECT id::text FROM job`.pipe(Effect.map((rows) => rows[0]?.id))

  /** Deletes up to `firesPruneBatch` fires whose slot is older than `firesKeepMs`; answers how many. */
  const pruneFires = sql<{ n: number }>`
    WITH gone AS (
      DELETE FROM schedule_fires WHERE ctid IN (
        SELECT ctid FROM schedule_fires
        WHERE slot < now() - ${firesKeepMs} * interval '1 millisecond'
        LIMIT ${firesPruneBatch} FOR UPDATE SKIP LOCKED
      ) RETURNING 1
    )
    SELECT count(*)::integer AS n FROM gone`.pipe(Effect.map((rows) => rows[0]?.n ?? 0))

  return {
    list,
    get,
    getForUpdate,
    upsert,
    remove,
    pause,
    resume,
    due,
    lockDue,
    isBusy,
    fireSlot,
    skipSlot,
    advance,
    trigger,
    pruneFires
  }
})

export class ScheduleRepo extends Context.Service<ScheduleRepo, Effect.Success<typeof make>>()(
  "jobq/ScheduleRepo"
) {
  static readonly layer = Layer.effect(ScheduleRepo, make)
}
