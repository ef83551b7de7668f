/**
 * The dashboard's overview figures, read in one read-only transaction whose every statement runs under its
 * own `statement_timeout`, none of which reads every finished job:
 *
 * - per queue, the unfinished jobs by status, counted exactly through the two partial indexes (ready jobs,
 *   running jobs; one `status IN` of all three matches neither and scanned the whole table), and the oldest
 *   ready job's age; blocked jobs (waiting in flows) through the flow jobs' index (`jobs_flow_idx`), so
 *   their count costs what the flow jobs kept cost (finished ones until pruned), never a scan of all jobs; the finished ones as the elected maintainer last recounted them into `queues`
 *   (`finishedCountedAt`);
 * - jobs succeeded and failed per minute over the last hour (`jobs_finished_idx`);
 * - wait and run time p50/p95 by queue and kind over the latest `latencySample` succeeded and as many
 *   failed jobs of the last hour.
 *
 * The API computes them at most once per interval and shares them (src/http/StatsCache.ts).
 */
import { Duration, Effect } from "effect"
import { SqlClient } from "effect/sql"

/** Most queues (and queue/kind pairs) the figures carry; the rest are left out and `truncated` says so. */
export const maxStatsGroups = 200
/** Most finished jobs of each status the percentiles are taken over (the latest of the last hour). */
export const latencySample = 10_000

export interface QueueStats {
  readonly queue: string
  readonly paused: boolean
  readonly counts: {
    readonly queued: number
    readonly retrying: number
    readonly running: number
    readonly blocked: number
    readonly succeeded: number | null
    readonly failed_permanent: number | null
    readonly cancelled: number | null
  }
  readonly finishedCountedAt: Date | null
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

interface Builder {
  queue: string
  paused: boolean
  counts: {
    queued: number
    retrying: number
    running: number
    blocked: number
    succeeded: number | null
    failed_permanent: number | null
    cancelled: number | null
  }
  finishedCountedAt: Date | null
  oldestReadyAgeMs: number | null
}

const orNull = (text: string | null) => (text === null ? null : Number(text))

export const compute = (statementTimeout: Duration.Duration) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const timeoutMs = Math.max(1, Math.round(Duration.toMillis(statementTimeout)))
    return yield* sql.withTransaction(
      Effect.gen(function* () {
        yield* sql`SET TRANSACTION READ ONLY`
        yield* sql`SELECT set_config('statement_timeout', ${String(timeoutMs)}, true)`
        // both halves in one statement, each with the predicate of one partial index; the ready half also
        // gives each queue's oldest ready job (the same rows, read once)
        const counts = yield* sql<{ queue: string; status: string; n: number; ageMs: number | null }>`
          SELECT queue, status, count(*)::integer AS n,
                 (extract(epoch FROM now() - min(run_at) FILTER (WHERE run_at <= now())) * 1000)::float8 AS "ageMs"
          FROM jobs WHERE status IN ('queued', 'retrying')
          GROUP BY queue, status
          UNION ALL
          SELECT queue, status, count(*)::integer, NULL::float8
          FROM jobs WHERE status = 'running'
          GROUP BY queue, status
          UNION ALL
          SELECT queue, status, count(*)::integer, NULL::float8
          FROM jobs WHERE flow_id IS NOT NULL AND status = 'blocked'
          GROUP BY queue, status`
        const finished = yield* sql<{
          name: string
          succeeded: string | null
          failed: string | null
          cancelled: string | null
          countedAt: Date | null
        }>`
          SELECT name, count_succeeded::text AS succeeded, count_failed_permanent::text AS failed,
                 count_cancelled::text AS cancelled, counted_at AS "countedAt"
          FROM queues WHERE counted_at IS NOT NULL
          ORDER BY name LIMIT ${maxStatsGroups + 1}`
        const paused = yield* sql<{ name: string }>`
          SELECT name FROM queues WHERE paused_at IS NOT NULL ORDER BY name LIMIT ${maxStatsGroups + 1}`
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
            FROM (
              (SELECT * FROM jobs WHERE status = 'succeeded' AND finished_at > now() - interval '1 hour'
               ORDER BY finished_at DESC LIMIT ${latencySample})
              UNION ALL
              (SELECT * FROM jobs WHERE status = 'failed_permanent' AND finished_at > now() - interval '1 hour'
               ORDER BY finished_at DESC LIMIT ${latencySample})
            ) latest
            WHERE started_at IS NOT NULL
          ) d
          GROUP BY queue, kind ORDER BY queue, kind LIMIT ${maxStatsGroups + 1}`
        const clock = yield* sql<{ now: Date }>`SELECT now() AS now`
        const byQueue = new Map<string, Builder>()
        const pausedSet = new Set(paused.map((row) => row.name))
        const entry = (queue: string): Builder => {
          let found = byQueue.get(queue)
          if (found === undefined) {
            found = {
              queue,
              paused: pausedSet.has(queue),
              counts: {
                queued: 0,
                retrying: 0,
                running: 0,
                blocked: 0,
                succeeded: null,
                failed_permanent: null,
                cancelled: null
              },
              finishedCountedAt: null,
              oldestReadyAgeMs: null
            }
            byQueue.set(queue, found)
          }
          return found
        }
        for (const row of counts) {
          const found = entry(row.queue)
          found.counts[row.status as "queued" | "retrying" | "running" | "blocked"] = row.n
          if (row.ageMs !== null)
            found.oldestReadyAgeMs = Math.max(found.oldestReadyAgeMs ?? 0, Math.max(0, row.ageMs))
        }
        for (const row of finished) {
          const found = entry(row.name)
          found.counts.succeeded = orNull(row.succeeded)
          found.counts.failed_permanent = orNull(row.failed)
          found.counts.cancelled = orNull(row.cancelled)
          found.finishedCountedAt = row.countedAt
        }
        for (const name of pausedSet) entry(name)
        const queues: Array<QueueStats> = [...byQueue.values()].sort((a, b) =>
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
