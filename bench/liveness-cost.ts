/**
 * What liveness costs the database while nothing happens: 1,000 jobs that sleep for ten minutes, held by 4
 * worker processes (250 each), against the same 4 workers holding nothing. For each 20-second window: row
 * updates (pg_stat_user_tables n_tup_upd, and how many were HOT), commits (pg_stat_database xact_commit) of
 * the bench database, and WAL bytes (pg_stat_wal, which is cluster-wide: other engineers' tests on the
 * shared server add to it, which is why idle and loaded windows alternate). Run: `bun bench/liveness-cost.ts`.
 */
import * as BenchDatabase from "./BenchDatabase.ts"
import * as WorkerProcess from "./WorkerProcess.ts"

const jobs = Number(process.env.LIVENESS_JOBS ?? 1000)
const processes = 4
const windowMs = Number(process.env.LIVENESS_WINDOW_MS ?? 20_000)
const rounds = Number(process.env.LIVENESS_ROUNDS ?? 2)

interface Counters {
  readonly at: number
  readonly upd: number
  readonly hot: number
  readonly commits: number
  readonly wal: number
}

await BenchDatabase.using("liveness", async (db) => {
  const counters = async (): Promise<Counters> => {
    await db.sql`SELECT pg_stat_clear_snapshot()`
    const [row] = await db.sql`
      SELECT (SELECT coalesce(sum(n_tup_upd), 0) FROM pg_stat_user_tables)::float8 AS upd,
             (SELECT coalesce(sum(n_tup_hot_upd), 0) FROM pg_stat_user_tables)::float8 AS hot,
             (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())::float8 AS commits,
             (SELECT wal_bytes FROM pg_stat_wal)::float8 AS wal`
    return { at: performance.now(), upd: row.upd, hot: row.hot, commits: row.commits, wal: row.wal }
  }
  const measure = async (label: string) => {
    // the backends flush their counters at most once a second: let the last window's settle first
    await Bun.sleep(1500)
    const a = await counters()
    await Bun.sleep(windowMs)
    await Bun.sleep(1500)
    const b = await counters()
    const s = (b.at - a.at) / 1000
    const line = {
      label,
      seconds: Number(s.toFixed(1)),
      updatesPerSecond: Number(((b.upd - a.upd) / s).toFixed(1)),
      hotUpdatesPerSecond: Number(((b.hot - a.hot) / s).toFixed(1)),
      commitsPerSecond: Number(((b.commits - a.commits) / s).toFixed(1)),
      walKiBPerSecond: Number(((b.wal - a.wal) / s / 1024).toFixed(1))
    }
    console.log(JSON.stringify(line))
    return line
  }
  const workers = Array.from({ length: processes }, (_, i) =>
    WorkerProcess.spawn(db.url, `liveness-${i}`, {
      WORKER_CONCURRENCY: String(Math.ceil(jobs / processes)),
      WORKER_PREFETCH: "0"
    })
  )
  const runningCount = async () =>
    Number((await db.sql`SELECT count(*)::int AS n FROM jobs WHERE status = 'running'`)[0].n)
  try {
    for (let round = 0; round < rounds; round++) {
      await db.sql`DELETE FROM jobs`
      await measure("idle: 4 workers, no jobs")
      await db.sql.unsafe(
        `INSERT INTO jobs (queue, kind, payload) SELECT 'default', 'sleep', '{"ms": 600000}'::jsonb
         FROM generate_series(1, $1::int)`,
        [jobs]
      )
      await db.sql`SELECT pg_notify('jobq_ready', 'default')`
      const deadline = Date.now() + 60_000
      while ((await runningCount()) < jobs) {
        if (Date.now() > deadline) throw new Error(`only ${await runningCount()} of ${jobs} jobs started`)
        await Bun.sleep(200)
      }
      await measure(`loaded: ${jobs} sleeping jobs over 4 workers`)
      await db.sql`UPDATE jobs SET cancel_requested_at = now() WHERE status = 'running'`
      await db.sql`SELECT pg_notify('jobq_cancel', id::text) FROM jobs WHERE status = 'running'`
      const end = Date.now() + 60_000
      while ((await runningCount()) > 0 && Date.now() < end) await Bun.sleep(200)
    }
  } finally {
    await Promise.all(workers.map((w) => w.stop()))
  }
})
