/**
 * Which jobs a list or a bulk action is about: status, queue, kind, ids, created and finished time ranges,
 * and payload containment (`payload @> {...}`). One builder of SQL conditions, so `GET /jobs` and
 * `POST /jobs/bulk` select the same jobs for the same filter.
 *
 * Payload containment has no index (a GIN index on every payload would slow every enqueue and grow with
 * every job): it is bounded instead. A page or a batch examines at most `payloadScanWindow` jobs in id
 * order (those matching the other filters); when the window ends before the page is full, the answer's
 * cursor points at the window's end, so paging goes on from there.
 */
import { Effect } from "effect"
import { SqlClient, type Statement } from "effect/sql"
import type { JobStatus } from "../domain/Job.ts"

export interface JobFilter {
  readonly status?: JobStatus | undefined
  readonly kind?: string | undefined
  readonly queue?: string | undefined
  readonly ids?: ReadonlyArray<string> | undefined
  readonly createdAfter?: Date | undefined
  readonly createdBefore?: Date | undefined
  readonly finishedAfter?: Date | undefined
  readonly finishedBefore?: Date | undefined
  /** A JSON object as text, passed to Postgres as is (so big integers compare exactly). */
  readonly payload?: string | undefined
}

/** Most jobs one page or batch examines for a payload filter. */
export const payloadScanWindow = 10_000

/**
 * The filter's conditions on alias `j`, without the payload containment (`withPayload` adds it) and with
 * `j.id > after` when given.
 */
export const conditions = (
  sql: SqlClient.SqlClient,
  filter: JobFilter,
  after: Statement.Fragment | undefined,
  options: { readonly withPayload: boolean; readonly upTo?: string | undefined }
): Array<Statement.Fragment> =>
  [
    filter.status === undefined ? undefined : sql`j.status = ${filter.status}`,
    filter.kind === undefined ? undefined : sql`j.kind = ${filter.kind}`,
    filter.queue === undefined ? undefined : sql`j.queue = ${filter.queue}`,
    filter.ids === undefined ? undefined : sql`j.id = ANY(${filter.ids}::uuid[])`,
    filter.createdAfter === undefined ? undefined : sql`j.created_at >= ${filter.createdAfter}`,
    filter.createdBefore === undefined ? undefined : sql`j.created_at < ${filter.createdBefore}`,
    filter.finishedAfter === undefined ? undefined : sql`j.finished_at >= ${filter.finishedAfter}`,
    filter.finishedBefore === undefined ? undefined : sql`j.finished_at < ${filter.finishedBefore}`,
    options.withPayload && filter.payload !== undefined
      ? sql`j.payload @> ${filter.payload}::jsonb`
      : undefined,
    options.upTo === undefined ? undefined : sql`j.id <= ${options.upTo}::uuid`,
    after === undefined ? undefined : sql`j.id > ${after}`
  ].filter((c) => c !== undefined)

export const where = (sql: SqlClient.SqlClient, fragments: ReadonlyArray<Statement.Fragment>) =>
  fragments.length > 0 ? sql`WHERE ${sql.and(fragments)}` : sql``

/**
 * For a filter with a payload: the id that ends the scan window after `after` (the `payloadScanWindow`-th
 * job matching the other filters), or undefined when fewer remain (the scan then reaches the end).
 */
export const scanWindowEnd = (filter: JobFilter, after: string | undefined) =>
  Effect.gen(function* () {
    if (filter.payload === undefined) return undefined
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ readonly id: string }>`
      SELECT j.id FROM jobs j
      ${where(sql, conditions(sql, filter, after === undefined ? undefined : sql`${after}::uuid`, { withPayload: false }))}
      ORDER BY j.id OFFSET ${payloadScanWindow - 1} LIMIT 1`
    return rows[0]?.id
  })
