/**
 * Starts every worker process on the same instant, so that process start-up is never timed: the harness
 * holds `LOCK TABLE jobs IN EXCLUSIVE MODE` while the workers start, each worker's first claim blocks on
 * it, and once as many claims wait as there are processes the harness reads the clock and commits.
 * Time zero is that clock reading (the database's `clock_timestamp()`, epoch seconds).
 */
import type { SQL } from "bun"

// the plain claims, and the limited claim (a function call: pg_stat_activity shows the call, not its body)
const waitingClaims = (sql: SQL) =>
  sql`SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock'
        AND (query LIKE '%attempts = j.attempts + 1%' OR query LIKE '%jobq_claim_limited(%')`.then((rows) =>
    Number(rows[0].n)
  )

/** `opening` runs once every worker waits at the gate, right before it opens (to read counters there). */
export const hold = async (
  sql: SQL,
  processes: number,
  start: () => void,
  timeoutMs = 20_000,
  opening: () => Promise<void> = async () => undefined
) => {
  const gate = await sql.reserve()
  try {
    await gate`BEGIN`
    await gate`LOCK TABLE jobs IN EXCLUSIVE MODE`
    start()
    const deadline = Date.now() + timeoutMs
    while ((await waitingClaims(sql)) < processes) {
      if (Date.now() > deadline) throw new Error(`workers did not reach their first claim in ${timeoutMs} ms`)
      await Bun.sleep(20)
    }
    await opening()
    const [{ at }] = await gate`SELECT extract(epoch FROM clock_timestamp())::float8 AS at`
    await gate`COMMIT`
    return Number(at)
  } catch (error) {
    await gate`ROLLBACK`.catch(() => undefined)
    throw error
  } finally {
    gate.release()
  }
}
