/**
 * The dashboard's overview figures, read in one read-only transaction whose every statement runs under its
 * own `statement_timeout`: per queue, jobs by status (the active states exactly, the finished ones over the
 * last 24 hours through `jobs_finished_idx`, never a scan of every finished job) and the oldest ready job's
 * age; jobs succeeded and failed per minute over the last hour; wait and run time p50/p95 by queue and kind
 * over the jobs finished in the last hour. The API computes them at most once per interval and shares them
 * (src/http/StatsCache.ts).
 */
import { Duration, Effect } from "effect"
import { SqlClient } from "effect/sql"

/** Most queues (and queue/kind pairs) the figures carry; the rest are left out and `truncated` says so. */
export const maxStatsGroups = 200

export interface QueueStats {
  readonly queue: string
  readonly paused: boolean
  readonly counts: {
    readonly queued: number
    readonly retrying: number
    readonly running: number
    readonly succeeded: number
    readonly failed_permanent: number
    readonly cancelled: number
  }
  readonly oldestReadyAgeMs: number | null
}

export interface ThroughputMinute {
  readonly minute: Date
  readonly succeeded: number
  readonly failed: number
}

export interface Latency {
  readonly queue: string
  readonly kind: string
  readonly jobs: number
  readonly waitP50Ms: number
  readonly waitP95Ms: number
  readonly runP50Ms: number
  readonly runP95Ms: number
}

export interface Stats {
  readonly computedAt: Date
  readonly queues: ReadonlyArray<QueueStats>
  readonly throughput: ReadonlyArray<ThroughputMinute>
  readonly latency: ReadonlyArray<Latency>
  readonly truncated: boolean
}

const emptyCounts = () => ({
  queued: 0,
  retrying: 0,
  running: 0,
  succeeded: 0,
  failed_permanent: 0,
  cancelled: 0
})

export const compute = (statementTimeout: Duration.Duration) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const timeoutMs = Math.max(1, Math.round(Duration.toMillis(statementTimeout)))
    return yield* sql.withTransaction(
      Effect.gen(function* () {
        yield* sql`SET TRANSACTION READ ONLY`
        yield* sql`SELECT set_config('statement_timeout', ${String(timeoutMs)}, true)`
        const counts = yield* sql<{ queue: string; status: string; n: number }>`
          SELECT queue, status, count(*)::integer AS n FROM jobs
          WHERE status IN ('queued', 'retrying', 'running')
          GROUP BY queue, status
          UNION ALL
          SELECT queue, status, count(*)::integer FROM jobs
          WHERE status IN ('succeeded', 'failed_permanent', 'cancelled')
            AND finished_at > now() - interval '24 hours'
          GROUP BY queue, status`
        const oldest = yield* sql<{ queue: string; ageMs: number }>`
          SELECT queue, (extract(epoch FROM now() - min(run_at)) * 1000)::float8 AS "ageMs" FROM jobs
          WHERE status IN ('queued', 'retrying') AND run_at <= now()
          GROUP BY queue`
        const paused = yield* sql<{ name: string }>`SELECT name FROM queues WHERE paused_at IS NOT NULL`
        const throughput = yield* sql<{ minute: Date; succeeded: number; failed: number }>`
          SELECT date_trunc('minute', finished_at) AS minute,
                 count(*) FILTER (WHERE status = 'succeeded')::integer AS succeeded,
                 count(*) FILTER (WHERE status = 'failed_permanent')::integer AS failed
          FROM jobs
          WHERE status IN ('succeeded', 'failed_permanent') AND finished_at > now() - interval '1 hour'
          GROUP BY 1 ORDER BY 1`
        const latency = yield* sql<Latency>`
          SELECT queue, kind, count(*)::integer AS jobs,
            (percentile_cont(0.5) WITHIN GROUP (ORDER BY wait_ms))::float8 AS "waitP50Ms",
            (percentile_cont(0.95) WITHIN GROUP (ORDER BY wait_ms))::float8 AS "waitP95Ms",
            (percentile_cont(0.5) WITHIN GROUP (ORDER BY run_ms))::float8 AS "runP50Ms",
            (percentile_cont(0.95) WITHIN GROUP (ORDER BY run_ms))::float8 AS "runP95Ms"
          FROM (
            SELECT queue, kind,
              greatest(0, extract(epoch FROM started_at - greatest(run_at, created_at)) * 1000) AS wait_ms,
              greatest(0, extract(epoch FROM finished_at - started_at) * 1000) AS run_ms
            FROM jobs
            WHERE status IN ('succeeded', 'failed_permanent') AND finished_at > now() - interval '1 hour'
              AND started_at IS NOT NULL
          ) d
          GROUP BY queue, kind ORDER BY queue, kind LIMIT ${maxStatsGroups + 1}`
        const clock = yield* sql<{ now: Date }>`SELECT now() AS now`
        const byQueue = new Map<string, QueueStats & { counts: ReturnType<typeof emptyCounts> }>()
        const pausedSet = new Set(paused.map((row) => row.name))
        const entry = (queue: string) => {
          let found = byQueue.get(queue)
          if (found === undefined) {
            found = { queue, paused: pausedSet.has(queue), counts: emptyCounts(), oldestReadyAgeMs: null }
            byQueue.set(queue, found)
          }
          return found
        }
        for (const row of counts) entry(row.queue).counts[row.status as keyof QueueStats["counts"]] = row.n
        for (const row of oldest) byQueue.set(row.queue, { ...entry(row.queue), oldestReadyAgeMs: row.ageMs })
        for (const name of pausedSet) entry(name)
        const queues = [...byQueue.values()].sort((a, b) =>
          a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0
        )
        return {
          computedAt: clock[0]?.now ?? new Date(),
          queues: queues.slice(0, maxStatsGroups),
          throughput,
          latency: latency.slice(0, maxStatsGroups),
          truncated: queues.length > maxStatsGroups || latency.length > maxStatsGroups
        } satisfies Stats
      })
    )
  })
