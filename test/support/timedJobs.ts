/**
 * What the tests of queue steering across worker processes share: a fresh database with `job_spans`, the
 * `timed` kind's table (test/fixtures/recordingKinds.ts), a fleet of worker processes, SQL on the side,
 * enqueueing timed jobs and reading their spans back (epoch milliseconds, database clock).
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { Queue } from "../../src/queue/Queue.ts"
import { jobSpansTable, kinds } from "../fixtures/recordingKinds.ts"
import { fleet } from "./processes.ts"
import { setupQueueTests } from "./runtime.ts"

export interface Span {
  readonly worker: string
  /** When the claim leased the job (its `started_at`). */
  readonly claimed: number
  readonly began: number
  readonly ended: number
}

export const setupTimedJobs = async (file: string) => {
  const { db, run } = await setupQueueTests(file, kinds)
  await run(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(jobSpansTable)))
  const sql = <A extends object>(f: (sql: SqlClient.SqlClient) => Effect.Effect<ReadonlyArray<A>, unknown>) =>
    run(Effect.flatMap(SqlClient.SqlClient, f) as Effect.Effect<ReadonlyArray<A>, never>)
  const enqueueTimed = (queue: string, count: number, sleepMs: number, cleanupMs?: number) =>
    run(
      Queue.use((q) =>
        q.enqueueMany(
          Array.from({ length: count }, () => ({
            kind: "timed",
            payload: cleanupMs === undefined ? { sleepMs } : { sleepMs, cleanupMs },
            queue
          }))
        )
      )
    )
  /** The finished runs of `queue`'s jobs. */
  const spansOf = (queue: string) =>
    sql<Span>(
      (s) => s`
        SELECT worker, extract(epoch FROM claimed_at)::float8 * 1000 AS claimed,
               extract(epoch FROM began_at)::float8 * 1000 AS began,
               extract(epoch FROM ended_at)::float8 * 1000 AS ended
        FROM job_spans WHERE queue = ${queue} AND ended_at IS NOT NULL`
    )
  const statusCounts = async (queue: string): Promise<Record<string, number>> =>
    Object.fromEntries(
      (
        await sql<{ status: string; n: number }>(
          (s) => s`SELECT status, count(*)::int AS n FROM jobs WHERE queue = ${queue} GROUP BY status`
        )
      ).map((r) => [r.status, r.n])
    )
  return { db, run, sql, enqueueTimed, spansOf, statusCounts, ...fleet(db.url) }
}
