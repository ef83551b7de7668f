/**
 * A backlog of ready no-op jobs in our `jobs` table, inserted in one statement, followed by `ANALYZE jobs`:
 * a freshly filled table without statistics plans the claim badly until autovacuum gets to it, so every
 * system is analyzed before it is timed.
 */
import type { SQL } from "bun"

export const fill = async (
  sql: SQL,
  count: number,
  options: { readonly status?: string; readonly kind?: string } = {}
) => {
  const status = options.status ?? "queued"
  await sql.unsafe(
    `INSERT INTO jobs (queue, kind, payload, status, attempts, started_at, finished_at)
     SELECT 'default', $3, '{}'::jsonb, $1,
            CASE WHEN $1 = 'queued' THEN 0 ELSE 1 END,
            CASE WHEN $1 = 'queued' THEN NULL ELSE now() END,
            CASE WHEN $1 = 'queued' THEN NULL ELSE now() END
     FROM generate_series(1, $2::int)`,
    [status, count, options.kind ?? "noop"]
  )
}

export const analyze = (sql: SQL) => sql`ANALYZE jobs`

/** Empties the table between runs, so each run starts from the same state. */
export const reset = async (sql: SQL) => {
  await sql`TRUNCATE jobs`
}
