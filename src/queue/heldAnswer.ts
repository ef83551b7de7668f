/**
 * A worker's batch statements over the jobs it holds (`JobRepo.complete`, `FlowRepo.completeDeleting`,
 * `JobRepo.markStarted`, `JobRepo.renewLeases`): how they name the worker to the planner, and what a completion
 * answers (which of the batch's jobs the worker still held when the statement ran; a job rescued meanwhile is
 * not among them, and its run settles nothing).
 */
import type { SqlClient } from "effect/sql"
import type { JobId } from "../domain/Job.ts"

/**
 * The answer of a completion of `n` jobs, over its `done` rows: null when the worker still held all of them,
 * else the ids of those it held. Every job of a batch is usually still held, and then the answer is one row of
 * one null instead of a row per job for the worker to decode (with `heldIds`).
 */
export const heldAnswer = (sql: SqlClient.SqlClient, n: number) =>
  sql`CASE WHEN count(*) = ${n}::integer THEN NULL ELSE coalesce(array_agg(id::text), '{}') END AS ids`

export interface HeldAnswer {
  readonly ids: ReadonlyArray<string> | null
}

/** The ids of the batch's jobs the worker still held, from `heldAnswer`'s row. */
export const heldIds =
  (batch: ReadonlyArray<{ readonly id: string }>) =>
  (rows: ReadonlyArray<HeldAnswer>): Array<JobId> => {
    const ids = rows[0]?.ids
    return (ids === null || ids === undefined ? batch.map((r) => r.id) : ids) as Array<JobId>
  }

/**
 * `lease_owner = <worker>` for a statement that joins a batch of ids to the jobs, with the worker's id hidden
 * from the planner (a sub-select it cannot see into). A worker's id is never in the table's statistics, so,
 * seen, the planner expected one running job of that worker, read them all through the lease index and joined
 * the batch to them with a nested loop: every pair compared, 33-39 ms for 500 jobs with 10,000 running jobs of
 * other workers in the table (bench/RESULTS.md, "a completion planned afresh"). Hidden, it expects a share of the
 * running jobs and hashes the batch instead (1.7-1.9 ms). That is the plan of a statement's first five calls on a
 * connection, and again after each `ANALYZE` of `jobs`; from the sixth call the prepared statement keeps a
 * generic plan, which never sees the worker's id either way.
 */
export const heldByOf = (sql: SqlClient.SqlClient) => (workerId: string) => sql`(SELECT ${workerId}::text)`
