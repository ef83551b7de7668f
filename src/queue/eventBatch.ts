/**
 * The events of a batch statement (a claim, a completion) as one `event_log` row, written by the statement
 * itself while the events gate is open (migrations/0012_event_batches.sql has the mechanism and why).
 */
import type { SqlClient } from "effect/sql"

/**
 * A condition for the statement's outer `WHERE`, over `rows` (a CTE returning `id`, `queue`, `kind` and
 * `attempts` of every job the statement moved): a one-time filter, always true, that opens the batch, runs
 * the CTE, writes its row, and closes the batch, all before the outer query reads `rows`. With the gate
 * closed it aggregates nothing and calls nothing more (the `HAVING`); open, it always closes the batch,
 * even when the statement moved no job.
 */
export const recordBatch = (sql: SqlClient.SqlClient, event: "started" | "succeeded", rows: string) =>
  sql.literal(
    `(SELECT jobq_events_batch('${event}', array_agg(id), array_agg(queue), array_agg(kind), array_agg(attempts))
      FROM ${rows} WHERE (SELECT jobq_events_batch_open())
      HAVING count(*) > 0 OR current_setting('jobq.events', true) = 'batch') IS NOT FALSE`
  )
