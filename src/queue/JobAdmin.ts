/**
 * What an operator does to jobs beyond one cancel or retry: delete a job, and retry, cancel or delete every
 * job a filter matches, one bounded batch per call. Each batch is one transaction over at most `batchSize`
 * jobs in id order after a cursor; its answer says how many it matched and acted on, and where the next
 * batch starts, so a caller (the dashboard) shows progress and may stop between batches. A job in a state
 * the action does not apply to is skipped, never an error: the filter is a selection, not a promise.
 */
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { JobNotFound, JobStateConflict } from "../domain/errors.ts"
import { isJobId, type Job } from "../domain/Job.ts"
import * as JobFilter from "./JobFilter.ts"
import { JobRepo } from "./JobRepo.ts"
import { Queue } from "./Queue.ts"

/** What one bulk batch statement answers: how many matched, the last id seen, how many it acted on, and the
 * unique jobs a retry left to `Queue.retry`. */
interface BatchRow {
  readonly matched: number
  readonly last: string | null
  readonly acted: number
  readonly retryUnique: ReadonlyArray<string>
}

export type BulkAction = "retry" | "cancel" | "delete"

export interface BulkRequest {
  readonly action: BulkAction
  readonly filter: JobFilter.JobFilter
  readonly cursor?: string | undefined
  readonly batchSize: number
}

export interface BulkBatch {
  /** Jobs of this batch that matched the filter. */
  readonly matched: number
  /** Of those, the ones the action changed (retried, cancelled or asked to cancel, deleted). */
  readonly acted: number
  /** Where the next batch starts; null when this was the last. */
  readonly nextCursor: string | null
}

export const maxBulkBatch = 1000
export const defaultBulkBatch = 500

const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const repo = yield* JobRepo
  const queue = yield* Queue

  /** Deletes a job that is not running; a running one must be cancelled first (it has a worker). */
  const remove = (id: string) =>
    Effect.gen(function* () {
      if (!isJobId(id)) return yield* Effect.fail(JobNotFound.of(id))
      const rows = yield* sql<{ readonly id: string }>`
        DELETE FROM jobs WHERE id = ${id} AND status <> 'running' RETURNING id`
      if (rows.length > 0) return
      const job: Job | undefined = yield* repo.get(id)
      if (job === undefined) return yield* Effect.fail(JobNotFound.of(id))
      return yield* Effect.fail(
        new JobStateConflict({
          id,
          status: job.status,
          message: `cannot delete job ${id}: it is ${job.status}; cancel it first`
        })
      )
    })

  /**
   * Makes a queued or retrying job due now (its delay or retry back-off is skipped) and wakes the workers of
   * its queue; its attempts are unchanged. A paused or limited queue still holds it back.
   */
  const runNow = (id: string) =>
    Effect.gen(function* () {
      if (!isJobId(id)) return yield* Effect.fail(JobNotFound.of(id))
      const rows = yield* sql<{ readonly id: string }>`
        WITH due AS (
          UPDATE jobs SET run_at = now(), updated_at = now()
          WHERE id = ${id} AND status IN ('queued', 'retrying')
          RETURNING id, queue)
        SELECT id, pg_notify('jobq_ready', queue)::text AS notified FROM due`
      const job: Job | undefined = yield* repo.get(id)
      if (job === undefined) return yield* Effect.fail(JobNotFound.of(id))
      if (rows.length === 0)
        return yield* Effect.fail(
          new JobStateConflict({
            id,
            status: job.status,
            message: `cannot run job ${id} now: it is ${job.status} (only queued and retrying jobs wait)`
          })
        )
      return job
    })

  const batchStatement = (request: BulkRequest, upTo: string | undefined) => {
    const { filter, cursor, batchSize } = request
    const after = cursor === undefined ? undefined : sql`${cursor}::uuid`
    const selected = sql`
      SELECT j.id FROM jobs j
      ${JobFilter.where(sql, JobFilter.conditions(sql, filter, after, { withPayload: true, upTo }))}
      ORDER BY j.id LIMIT ${batchSize}`
    switch (request.action) {
      case "cancel":
        return sql<BatchRow>`
          -- blocked flow jobs too, as POST /jobs/{id}/cancel does (their dependents follow by the flow's
          -- policy, in jobq_flow_advance); the batch's rows locked in id order, the order every statement
          -- that moves flows locks blocked jobs in
          WITH batch AS (${selected} FOR UPDATE),
          acted AS (
            UPDATE jobs AS j
            SET status = CASE WHEN j.status = 'running' THEN j.status ELSE 'cancelled' END,
                finished_at = CASE WHEN j.status = 'running' THEN j.finished_at ELSE now() END,
                cancel_requested_at = coalesce(j.cancel_requested_at, now()),
                updated_at = now()
            FROM batch b
            WHERE j.id = b.id AND j.status IN ('queued', 'retrying', 'running', 'blocked')
            RETURNING j.id)
          SELECT (SELECT count(*) FROM batch)::integer AS matched,
                 (SELECT id FROM batch ORDER BY id DESC LIMIT 1)::text AS last,
                 (SELECT count(*) FROM acted)::integer AS acted,
                 ARRAY[]::text[] AS "retryUnique"`
      case "delete":
        return sql<BatchRow>`
          WITH batch AS (${selected}),
          acted AS (
            DELETE FROM jobs j USING batch b WHERE j.id = b.id AND j.status <> 'running' RETURNING j.id)
          SELECT (SELECT count(*) FROM batch)::integer AS matched,
                 (SELECT id FROM batch ORDER BY id DESC LIMIT 1)::text AS last,
                 (SELECT count(*) FROM acted)::integer AS acted,
                 ARRAY[]::text[] AS "retryUnique"`
      case "retry":
        // jobs with a unique key go one by one through Queue.retry (another job may hold their slot), and so
        // do flow jobs (one whose dependencies have not all succeeded goes back to blocked, and
        // `jobs_blocked_until_deps` refuses to queue it: set-based, that failed the whole batch with a 500;
        // a job of a cancelled flow is not retried)
        return sql<BatchRow>`
          WITH batch AS (${selected}),
          acted AS (
            UPDATE jobs AS j
            SET status = 'queued', attempts = 0, run_at = now(), cancel_requested_at = NULL,
                finished_at = NULL, started_at = NULL, updated_at = now(),
                snoozes = 0, unstarted_rescues = 0, attempt_started = false, progress = NULL
            FROM batch b
            WHERE j.id = b.id AND j.status IN ('failed_permanent', 'cancelled') AND j.unique_key IS NULL
              AND j.flow_id IS NULL
            RETURNING j.id, j.queue),
          notified AS (SELECT pg_notify('jobq_ready', q.queue) FROM (SELECT DISTINCT queue FROM acted) q)
          SELECT (SELECT count(*) FROM batch)::integer AS matched,
                 (SELECT id FROM batch ORDER BY id DESC LIMIT 1)::text AS last,
                 ((SELECT count(*) FROM acted) + 0 * (SELECT count(*) FROM notified))::integer AS acted,
                 ARRAY(SELECT j.id::text FROM jobs j JOIN batch b ON j.id = b.id
                       WHERE j.status IN ('failed_permanent', 'cancelled')
                         AND (j.unique_key IS NOT NULL OR j.flow_id IS NOT NULL)
                       ORDER BY j.id) AS "retryUnique"`
    }
  }

  /** One batch of a bulk action (see the module's description). */
  const bulk = (request: BulkRequest) =>
    Effect.gen(function* () {
      const upTo = yield* JobFilter.scanWindowEnd(request.filter, request.cursor)
      const [row] = yield* sql.withTransaction(batchStatement(request, upTo))
      let acted = row?.acted ?? 0
      for (const id of row?.retryUnique ?? []) {
        const retried = yield* queue.retry(id).pipe(
          Effect.as(true),
          Effect.catchTags({
            JobStateConflict: () => Effect.succeed(false),
            JobNotFound: () => Effect.succeed(false)
          })
        )
        if (retried) acted++
      }
      const matched = row?.matched ?? 0
      const nextCursor =
        matched >= request.batchSize && row?.last != null ? row.last : upTo === undefined ? null : upTo
      return { matched, acted, nextCursor } satisfies BulkBatch
    }).pipe(Effect.provideService(SqlClient.SqlClient, sql))

  return { remove, runNow, bulk }
})

export class JobAdmin extends Context.Service<JobAdmin, Effect.Success<typeof make>>()("jobq/JobAdmin") {
  static readonly layer = Layer.effect(JobAdmin, make)
}
