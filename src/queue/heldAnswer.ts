/**
 * What a batch completion answers (`JobRepo.complete`, `FlowRepo.completeDeleting`): which of the batch's jobs the
 * worker still held when the statement ran. A job rescued meanwhile is not among them, and its run settles nothing.
 */
import type { SqlClient } from "effect/sql"
import type { JobId } from "../domain/Job.ts"

/**
 * The answer of a completion of `n` jobs, over its `done` rows: how many the worker still held and, only when that
 * is not all of them, their ids. Every job of a batch is usually still held, and then the answer is one row of
 * two small values instead of a row per job for the worker to decode (with `heldIds`).
 */
export const heldAnswer = (sql: SqlClient.SqlClient, n: number) =>
  sql`count(*)::integer AS held,
      CASE WHEN count(*) = ${n}::integer THEN NULL ELSE coalesce(array_agg(id::text), '{}') END AS ids`

export interface HeldAnswer {
  readonly held: number
  readonly ids: ReadonlyArray<string> | null
}

/** The ids of the batch's jobs the worker still held, from `heldAnswer`'s row. */
export const heldIds =
  (batch: ReadonlyArray<{ readonly id: string }>) =>
  (rows: ReadonlyArray<HeldAnswer>): Array<JobId> => {
    const ids = rows[0]?.ids
    return (ids === null || ids === undefined ? batch.map((r) => r.id) : ids) as Array<JobId>
  }
