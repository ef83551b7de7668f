/**
 * The statements of retention (`JOB_RETENTION` and per status): finished jobs outside flows are deleted
 * one status at a time; a flow's jobs are kept until their whole flow has finished, and then deleted with
 * it, so a dependent never loses its dependencies' results (`parents`) while it waits. The elected
 * maintainer runs them (src/worker/Maintenance.ts).
 */
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import type { JobStatus } from "../domain/Job.ts"

const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient

  /**
   * Deletes up to `limit` jobs of one finished status that finished before the cutoff, oldest first; answers
   * how many. Reads `jobs_finished_idx` (status, finished_at) from its oldest end and deletes through the
   * primary key, so a batch costs the rows it deletes, however many finished jobs are kept. Jobs of flows
   * are left to `pruneFlows`.
   */
  const pruneFinished = (status: JobStatus, olderThanMs: number, limit: number) =>
    sql<{ count: number }>`
      WITH doomed AS (
        SELECT id FROM jobs
        WHERE status = ${status} AND finished_at < now() - ${olderThanMs} * interval '1 millisecond'
          AND flow_id IS NULL
        ORDER BY finished_at
        LIMIT ${limit}
        FOR UPDATE SKIP LOCKED
      ), deleted AS (
        -- an array, not a join: joined, the planner hashed the batch against a scan of the whole table
        DELETE FROM jobs WHERE id = ANY(ARRAY(SELECT id FROM doomed)) RETURNING 1
      )
      SELECT count(*)::integer AS count FROM deleted`.pipe(Effect.map((rows) => rows[0]?.count ?? 0))

  /**
   * Deletes up to `limit` flows whose every job finished before the cutoff: their jobs (and, by the delete
   * trigger of migration 0007, their edges), then the flows themselves; answers how many flows. Oldest
   * flows first (ids are time-ordered); a flow with an unfinished job is never touched.
   */
  const pruneFlows = (olderThanMs: number, limit: number) =>
    sql.withTransaction(
      Effect.gen(function* () {
        const doomed = yield* sql<{ id: string }>`
          SELECT f.id FROM flows f
          WHERE f.created_at < now() - ${olderThanMs} * interval '1 millisecond'
            AND NOT EXISTS (
              SELECT 1 FROM jobs j WHERE j.flow_id = f.id
                AND (j.finished_at IS NULL OR j.status NOT IN ('succeeded', 'failed_permanent', 'cancelled')
                     OR j.finished_at >= now() - ${olderThanMs} * interval '1 millisecond'))
          ORDER BY f.id
          LIMIT ${limit}
          FOR UPDATE SKIP LOCKED`
        if (doomed.length === 0) return 0
        const ids = doomed.map((row) => row.id)
        // the conditions again: a job retried (or claimed once retried) since the select above is
        // re-read by the delete after its lock is released, and kept, with its flow
        yield* sql`
          DELETE FROM jobs
          WHERE flow_id = ANY(${ids}::uuid[]) AND status IN ('succeeded', 'failed_permanent', 'cancelled')
            AND finished_at < now() - ${olderThanMs} * interval '1 millisecond'`
        const flows = yield* sql<{ id: string }>`
          DELETE FROM flows f
          WHERE f.id = ANY(${ids}::uuid[]) AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.flow_id = f.id)
          RETURNING f.id`
        return flows.length
      })
    )

  return { pruneFinished, pruneFlows }
})

export class RetentionRepo extends Context.Service<RetentionRepo, Effect.Success<typeof make>>()(
  "jobq/RetentionRepo"
) {
  static readonly layer = Layer.effect(RetentionRepo, make)
}
