/**
 * Every SQL statement on the `queues` table (migrations/0004_queues.sql): pause, resume and limits (each
 * an upsert, so an operator may steer a queue before its first job, and each notifying the workers at
 * commit: `Notifier.queuesChanged` on `jobq_ready`), the listing with counts, and the snapshot a worker steers its claims by. Methods fail with
 * `SqlError` only; the rules live in `QueueControl`.
 */

import { Context, Effect, Layer } from "effect"
import { SqlClient, type Statement } from "effect/sql"
import type { LimitsChange, QueueInfo } from "../domain/Queues.ts"
import { parentsColumn } from "./FlowRepo.ts"
import { type ClaimedJob, type ClaimedRow, claimedJob, type LeaseMs } from "./JobRepo.ts"
import { channels, queuesChanged } from "./Notifier.ts"

interface QueueRow {
  readonly name: string
  readonly pausedAt: Date | null
  readonly pausedBy: string | null
  readonly pauseReason: string | null
  readonly concurrencyLimit: number | null
  readonly rateMax: number | null
  readonly ratePerMs: number | null
  readonly queued: number
  readonly retrying: number
  readonly running: number
  readonly blocked: number
  readonly succeeded: string | null
  readonly failedPermanent: string | null
  readonly cancelled: string | null
  readonly countedAt: Date | null
  readonly oldestReadyAgeSeconds: number | null
  readonly createdAt: Date
  readonly updatedAt: Date
}

const count = (value: string | null) => (value === null ? null : Number(value))

const toInfo = (row: QueueRow): QueueInfo => ({
  name: row.name,
  paused: row.pausedAt !== null,
  pause: row.pausedAt === null ? null : { at: row.pausedAt, by: row.pausedBy, reason: row.pauseReason },
  concurrencyLimit: row.concurrencyLimit,
  rateLimit: row.rateMax === null || row.ratePerMs === null ? null : { max: row.rateMax, per: row.ratePerMs },
  counts: {
    queued: row.queued,
    retrying: row.retrying,
    running: row.running,
    blocked: row.blocked,
    succeeded: count(row.succeeded),
    failed_permanent: count(row.failedPermanent),
    cancelled: count(row.cancelled)
  },
  finishedCountedAt: row.countedAt,
  oldestReadyAgeSeconds: row.oldestReadyAgeSeconds,
  createdAt: row.createdAt,
  updatedAt: row.updatedAt
})

/** A limited queue whose claim its limit cut short. */
export interface HeldBack {
  readonly queue: string
  readonly limit: "concurrency" | "rate"
  /** For a rate limit: when its window has room again. */
  readonly reopensAt: Date | null
}

export interface LimitedClaim {
  readonly jobs: ReadonlyArray<ClaimedJob>
  readonly heldBack: ReadonlyArray<HeldBack>
}

type LimitedRow =
  | (ClaimedRow & { readonly heldBack: null; readonly reopensAt: null })
  | {
      readonly id: null
      readonly queue: string
      readonly heldBack: "concurrency" | "rate"
      readonly reopensAt: Date | null
    }

/** What a worker needs to know of one queue to steer its claims. */
export interface SteeringRow {
  readonly name: string
  readonly paused: boolean
  readonly limited: boolean
}

/** Rows a worker reads for its steering snapshot at most; beyond, it claims without the queue list. */
export const steeringRowsCap = 10_000

const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient

  /**
   * Queues with their counts. Unfinished jobs are counted through the partial indexes (ready jobs of each
   * listed queue through `jobs_queue_ready_idx`, running ones through `jobs_lease_expiry_idx`, blocked ones
   * through the flow jobs' `jobs_flow_idx`), so no finished row outside flows is read: those are counted by
   * `recountFinished`, off the request path.
   */
  const select = (where: Statement.Fragment, limit: number) => sql<QueueRow>`
    WITH page AS (
      SELECT * FROM queues q ${where} ORDER BY q.name LIMIT ${limit}
    ), running AS (
      SELECT queue, count(*)::integer AS n FROM jobs
      WHERE status = 'running' AND queue IN (SELECT name FROM page)
      GROUP BY queue
    ), blocked AS (
      SELECT queue, count(*)::integer AS n FROM jobs
      WHERE flow_id IS NOT NULL AND status = 'blocked' AND queue IN (SELECT name FROM page)
      GROUP BY queue
    )
    SELECT p.name, p.paused_at AS "pausedAt", p.paused_by AS "pausedBy", p.pause_reason AS "pauseReason",
           p.concurrency_limit AS "concurrencyLimit", p.rate_max AS "rateMax", p.rate_per_ms AS "ratePerMs",
           r.queued, r.retrying, coalesce(ru.n, 0) AS running, coalesce(bl.n, 0) AS blocked,
           p.count_succeeded::text AS succeeded, p.count_failed_permanent::text AS "failedPermanent",
           p.count_cancelled::text AS cancelled, p.counted_at AS "countedAt",
           r.oldest AS "oldestReadyAgeSeconds", p.created_at AS "createdAt", p.updated_at AS "updatedAt"
    FROM page p
    CROSS JOIN LATERAL (
      SELECT count(*) FILTER (WHERE j.status = 'queued')::integer AS queued,
             count(*) FILTER (WHERE j.status = 'retrying')::integer AS retrying,
             extract(epoch FROM now() - min(j.run_at) FILTER (WHERE j.run_at <= now()))::float8 AS oldest
      FROM jobs j WHERE j.queue = p.name AND j.status IN ('queued', 'retrying')
    ) r
    LEFT JOIN running ru ON ru.queue = p.name
    LEFT JOIN blocked bl ON bl.queue = p.name
    ORDER BY p.name`

  /** Up to `limit` queues in name order, after `after` when given. */
  const list = (limit: number, after?: string) =>
    select(after === undefined ? sql`` : sql`WHERE q.name > ${after}`, limit).pipe(
      Effect.map((rows) => rows.map(toInfo))
    )

  const get = (name: string) =>
    select(sql`WHERE q.name = ${name}`, 1).pipe(
      Effect.map((rows) => (rows[0] === undefined ? undefined : toInfo(rows[0])))
    )

  /**
   * Pauses the queue (creating its row if need be). A queue already paused keeps its pause time, and its
   * reason and author unless new ones are given. Answers whether it was paused before.
   */
  const pause = (name: string, reason: string | null, by: string | null) =>
    sql<{ wasPaused: boolean }>`
      WITH before AS (SELECT paused_at FROM queues WHERE name = ${name}),
      paused AS (
        INSERT INTO queues AS q (name, paused_at, paused_by, pause_reason)
        VALUES (${name}, now(), ${by}, ${reason})
        ON CONFLICT (name) DO UPDATE SET
          paused_at = coalesce(q.paused_at, now()),
          paused_by = CASE WHEN q.paused_at IS NULL THEN EXCLUDED.paused_by
                           ELSE coalesce(EXCLUDED.paused_by, q.paused_by) END,
          pause_reason = CASE WHEN q.paused_at IS NULL THEN EXCLUDED.pause_reason
                              ELSE coalesce(EXCLUDED.pause_reason, q.pause_reason) END,
          updated_at = now()
        RETURNING q.name
      )
      SELECT (SELECT paused_at FROM before) IS NOT NULL AS "wasPaused", pg_notify(${channels.ready}, ${queuesChanged})
      FROM paused p`.pipe(Effect.map((rows) => rows[0]?.wasPaused ?? false))

  /** Resumes the queue (creating its row if need be); answers whether it was paused. */
  const resume = (name: string) =>
    sql<{ wasPaused: boolean }>`
      WITH before AS (SELECT paused_at FROM queues WHERE name = ${name}),
      resumed AS (
        INSERT INTO queues AS q (name) VALUES (${name})
        ON CONFLICT (name) DO UPDATE SET
          paused_at = NULL, paused_by = NULL, pause_reason = NULL,
          updated_at = CASE WHEN q.paused_at IS NULL THEN q.updated_at ELSE now() END
        RETURNING q.name
      )
      SELECT (SELECT paused_at FROM before) IS NOT NULL AS "wasPaused", pg_notify(${channels.ready}, ${queuesChanged})
      FROM resumed r`.pipe(Effect.map((rows) => rows[0]?.wasPaused ?? false))

  /** Sets the limits given (a field left out keeps its value; null removes the limit). */
  const setLimits = (name: string, change: LimitsChange) => {
    const setConcurrency = change.concurrencyLimit !== undefined
    const setRate = change.rateLimit !== undefined
    const concurrency = change.concurrencyLimit ?? null
    const rate = change.rateLimit ?? null
    return sql`
      WITH changed AS (
        INSERT INTO queues AS q (name, concurrency_limit, rate_max, rate_per_ms)
        VALUES (${name}, ${concurrency}::integer, ${rate?.max ?? null}::integer, ${rate?.per ?? null}::integer)
        ON CONFLICT (name) DO UPDATE SET
          concurrency_limit = CASE WHEN ${setConcurrency} THEN EXCLUDED.concurrency_limit
                                   ELSE q.concurrency_limit END,
          rate_max = CASE WHEN ${setRate} THEN EXCLUDED.rate_max ELSE q.rate_max END,
          rate_per_ms = CASE WHEN ${setRate} THEN EXCLUDED.rate_per_ms ELSE q.rate_per_ms END,
          updated_at = now()
        RETURNING q.name
      )
      SELECT pg_notify(${channels.ready}, ${queuesChanged}) FROM changed c`.pipe(Effect.asVoid)
  }

  /** Every queue (up to `steeringRowsCap` + 1) with whether it is paused or limited. */
  const steering = sql<SteeringRow>`
    SELECT name, paused_at IS NOT NULL AS paused,
           (concurrency_limit IS NOT NULL OR rate_max IS NOT NULL) AS limited
    FROM queues ORDER BY name LIMIT ${steeringRowsCap + 1}`

  /** Paused or limited queues with their settings (for gauges), through `queues_steered_idx`. */
  const steeredSettings = sql<{
    readonly name: string
    readonly paused: boolean
    readonly concurrencyLimit: number | null
    readonly rateMax: number | null
    readonly ratePerMs: number | null
  }>`
    SELECT name, paused_at IS NOT NULL AS paused, concurrency_limit AS "concurrencyLimit", rate_max AS "rateMax",
           rate_per_ms AS "ratePerMs"
    FROM queues
    WHERE paused_at IS NOT NULL OR concurrency_limit IS NOT NULL OR rate_max IS NOT NULL
    ORDER BY name LIMIT ${steeringRowsCap}`

  /**
   * Counts finished jobs per queue and status into `queues` (the counts GET /queues shows for them), and
   * registers any queue only finished jobs still name. A scan of every finished job: the maintainer runs
   * it now and then, never a request. A queue row another statement holds (the limited claim writing its
   * rate log) is skipped until the next round: waiting on it could close a cycle of row locks.
   */
  const recountFinished = sql`
    WITH counted AS (
      SELECT queue,
             count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
             count(*) FILTER (WHERE status = 'failed_permanent') AS failed_permanent,
             count(*) FILTER (WHERE status = 'cancelled') AS cancelled
      FROM jobs WHERE status IN ('succeeded', 'failed_permanent', 'cancelled')
      GROUP BY queue
    ), registered AS (
      INSERT INTO queues (name) SELECT queue FROM counted ON CONFLICT DO NOTHING
    )
    UPDATE queues q
    SET count_succeeded = coalesce(c.succeeded, 0), count_failed_permanent = coalesce(c.failed_permanent, 0),
        count_cancelled = coalesce(c.cancelled, 0), counted_at = now()
    FROM (SELECT name FROM queues ORDER BY name FOR UPDATE SKIP LOCKED) every
    LEFT JOIN counted c ON c.queue = every.name
    WHERE q.name = every.name`.pipe(Effect.asVoid)

  /**
   * Claims up to `limit` jobs of the limited, unpaused queues among `queues` (all when undefined), one queue
   * at a time under its lock (`jobq_claim_limited`, migrations/0004_queues.sql, its count of live jobs 0013), and says which queues a
   * limit held back. Commits without waiting for its WAL flush, as `JobRepo.claim` does: call it in
   * autocommit.
   */
  const claimLimited = (workerId: string, limit: number, leaseMs: LeaseMs, queues?: ReadonlyArray<string>) =>
    sql<LimitedRow>`
      SELECT id, queue, kind, payload, priority, attempts, max_attempts AS "maxAttempts", run_at AS "runAt",
             idempotency_key AS "idempotencyKey", last_error AS "lastError", errors, created_at AS "createdAt",
             started_at AS "startedAt", trace_context AS "traceContext",
             coalesce(record_start_first, false) AS "recordStartFirst", snoozes, progress, held_back AS "heldBack",
             reopens_at AS "reopensAt", f.flow_id AS "flowId", f.flow_name AS "flowName", ${sql.literal(parentsColumn("c.id", "f.flow_id"))}
      FROM jobq_claim_limited(${workerId}, ${limit}, ${leaseMs}, ${queues === undefined ? null : [...queues]}::text[]) c
      -- the function's columns are fixed (migration 0004): the flow is read beside them
      LEFT JOIN LATERAL (SELECT j.flow_id, j.flow_name FROM jobs j WHERE j.id = c.id) f ON true`.pipe(
      Effect.map((rows): LimitedClaim => {
        const jobs: Array<ClaimedJob> = []
        const heldBack: Array<HeldBack> = []
        for (const row of rows) {
          if (row.id === null) {
            heldBack.push({ queue: row.queue, limit: row.heldBack, reopensAt: row.reopensAt })
            continue
          }
          const { heldBack: _, reopensAt: __, ...job } = row
          jobs.push(claimedJob(job, workerId, leaseMs))
        }
        return { jobs, heldBack }
      })
    )

  /**
   * Registers every queue that has ready jobs but no row (a row deleted by hand: sessions that registered
   * it remember it and will not again). One index probe per queue (a skip scan of jobs_queue_ready_idx),
   * however many jobs are ready. Answers the queues registered.
   */
  const registerReady = sql<{ name: string }>`
    WITH RECURSIVE ready (queue) AS (
      (SELECT queue FROM jobs WHERE status IN ('queued', 'retrying') ORDER BY queue LIMIT 1)
      UNION ALL
      SELECT (SELECT j.queue FROM jobs j
              WHERE j.status IN ('queued', 'retrying') AND j.queue > r.queue ORDER BY j.queue LIMIT 1)
      FROM ready r WHERE r.queue IS NOT NULL
    )
    INSERT INTO queues (name) SELECT queue FROM ready WHERE queue IS NOT NULL
    ON CONFLICT DO NOTHING RETURNING name`.pipe(Effect.map((rows) => rows.map((r) => r.name)))

  return {
    list,
    get,
    pause,
    resume,
    setLimits,
    steering,
    steeredSettings,
    recountFinished,
    registerReady,
    claimLimited
  }
})

export class QueueRepo extends Context.Service<QueueRepo, Effect.Success<typeof make>>()("jobq/QueueRepo") {
  static readonly layer = Layer.effect(QueueRepo, make)
}
