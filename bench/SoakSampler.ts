/**
 * What the soak reads from the database every window: the jobs that finished in it (how many; pickup
 * latency, enqueue to claim, and end-to-end latency, enqueue to completion: exact p50/p99 and a log-scale
 * histogram so that windows can be merged afterwards), the `jobs` table's size (heap, each index, total),
 * its dead tuples and autovacuum counts, and the backlog. Windows are read on the database clock, a couple
 * of seconds after they close, so that completions whose transaction started before the end but committed
 * after it are counted in their window.
 */
import type { SQL } from "bun"

/** Histogram buckets per factor e (about 40 per decade: bucket edges 6% apart). */
const bucketsPerE = 40 / Math.LN10

export type Histogram = Readonly<Record<string, number>>

export interface Finished {
  readonly count: number
  readonly pickupP50Ms: number
  readonly pickupP99Ms: number
  readonly endToEndP50Ms: number
  readonly endToEndP99Ms: number
  readonly pickupHistogram: Histogram
  readonly endToEndHistogram: Histogram
}

const number = (value: unknown) => (value === null || value === undefined ? Number.NaN : Number(value))

/** Jobs that succeeded with `finished_at` in [from, to) (epoch seconds), through `jobs_finished_idx`. */
export const finished = async (sql: SQL, from: number, to: number): Promise<Finished> => {
  const [row] = await sql.unsafe(
    `WITH w AS MATERIALIZED (
       SELECT greatest(0, extract(epoch FROM started_at - greatest(run_at, created_at)) * 1000)::float8 AS pickup,
              greatest(0, extract(epoch FROM finished_at - greatest(run_at, created_at)) * 1000)::float8 AS total
       FROM jobs
       WHERE status = 'succeeded' AND finished_at >= to_timestamp($1) AND finished_at < to_timestamp($2)
     )
     SELECT (SELECT count(*) FROM w)::int AS count,
            (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY pickup) FROM w)::float8 AS pickup_p50,
            (SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY pickup) FROM w)::float8 AS pickup_p99,
            (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY total) FROM w)::float8 AS total_p50,
            (SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY total) FROM w)::float8 AS total_p99,
            (SELECT json_object_agg(b, n) FROM (
               SELECT floor(ln(greatest(pickup, 0.01)) * $3)::int AS b, count(*)::int AS n FROM w GROUP BY 1) h
            )::text AS pickup_histogram,
            (SELECT json_object_agg(b, n) FROM (
               SELECT floor(ln(greatest(total, 0.01)) * $3)::int AS b, count(*)::int AS n FROM w GROUP BY 1) h
            )::text AS total_histogram`,
    [from, to, bucketsPerE]
  )
  return {
    count: Number(row.count),
    pickupP50Ms: number(row.pickup_p50),
    pickupP99Ms: number(row.pickup_p99),
    endToEndP50Ms: number(row.total_p50),
    endToEndP99Ms: number(row.total_p99),
    pickupHistogram: JSON.parse(row.pickup_histogram ?? "{}"),
    endToEndHistogram: JSON.parse(row.total_histogram ?? "{}")
  }
}

export interface TableState {
  readonly totalBytes: number
  readonly heapBytes: number
  readonly indexBytes: number
  readonly indexes: Readonly<Record<string, number>>
  readonly liveTuples: number
  readonly deadTuples: number
  readonly autovacuums: number
  readonly autoanalyzes: number
  readonly ready: number
  readonly running: number
}

export const table = async (sql: SQL): Promise<TableState> => {
  const [row] = await sql`
    SELECT pg_total_relation_size('jobs')::float8 AS total,
           pg_relation_size('jobs')::float8 AS heap,
           pg_indexes_size('jobs')::float8 AS indexes,
           (SELECT json_object_agg(indexrelid::regclass::text, pg_relation_size(indexrelid))
            FROM pg_index WHERE indrelid = 'jobs'::regclass)::text AS per_index,
           s.n_live_tup::float8 AS live, s.n_dead_tup::float8 AS dead,
           s.autovacuum_count::int AS autovacuums, s.autoanalyze_count::int AS autoanalyzes,
           (SELECT count(*) FROM jobs WHERE status IN ('queued', 'retrying'))::int AS ready,
           (SELECT count(*) FROM jobs WHERE status = 'running')::int AS running
    FROM pg_stat_user_tables s WHERE s.relid = 'jobs'::regclass`
  return {
    totalBytes: Number(row.total),
    heapBytes: Number(row.heap),
    indexBytes: Number(row.indexes),
    indexes: JSON.parse(row.per_index ?? "{}"),
    liveTuples: Number(row.live),
    deadTuples: Number(row.dead),
    autovacuums: Number(row.autovacuums),
    autoanalyzes: Number(row.autoanalyzes),
    ready: Number(row.ready),
    running: Number(row.running)
  }
}

/** Adds histograms bucket by bucket. */
export const merge = (histograms: ReadonlyArray<Histogram>): Histogram => {
  const sum: Record<string, number> = {}
  for (const h of histograms) for (const [b, n] of Object.entries(h)) sum[b] = (sum[b] ?? 0) + n
  return sum
}

/** The p-th percentile of a histogram: the geometric middle of the bucket it falls in (within 3%). */
export const percentileOf = (histogram: Histogram, p: number): number => {
  const buckets = Object.entries(histogram)
    .map(([b, n]) => [Number(b), n] as const)
    .sort((a, b) => a[0] - b[0])
  const total = buckets.reduce((s, [, n]) => s + n, 0)
  if (total === 0) return Number.NaN
  const rank = (p / 100) * total
  let seen = 0
  for (const [b, n] of buckets) {
    seen += n
    if (seen >= rank) return Math.exp((b + 0.5) / bucketsPerE)
  }
  return Math.exp((buckets[buckets.length - 1]![0] + 0.5) / bucketsPerE)
}

/** Machine-wide CPU busy time (all cores, jiffies) and total, from /proc/stat. */
export const cpuTimes = async () => {
  const line = (await Bun.file("/proc/stat").text()).split("\n")[0]!
  const values = line.trim().split(/\s+/).slice(1).map(Number)
  const idle = (values[3] ?? 0) + (values[4] ?? 0)
  const total = values.reduce((s, v) => s + v, 0)
  return { busy: total - idle, total }
}

export const loadAverage = async () => Number((await Bun.file("/proc/loadavg").text()).split(" ")[0])
