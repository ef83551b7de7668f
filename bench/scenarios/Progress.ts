/**
 * What progress reports cost a drain (issue #18: "a handler reporting progress every 100 ms costs < 5% of
 * drain throughput"). One worker process of 200 slots drains a backlog of jobs that each run 1 s in 100 ms
 * steps, once with a handler that reports `{ step, of }` after each step (`progress_reporting`) and once with
 * the same handler reporting nothing (`progress_quiet`), in pairs whose order alternates. Timed as the drain
 * scenario times ours (OurDrain: first handler call to last completion, behind the start gate).
 *
 * The database side of each run, from just before the workers start to just after they exit:
 * - `n_tup_upd` and `n_tup_hot_upd` of `jobs` (pg_stat_user_tables of the run's own database; the workers'
 *   counts are flushed when their sessions end, which the scenario waits for);
 * - WAL bytes of the run's own database: the records between the two WAL positions that touch one of its
 *   relations (pg_walinspect), which other work on the shared server does not reach (commit records, which
 *   name no relation, are left out);
 * - WAL bytes of the whole server between the two positions (what `pg_stat_wal.wal_bytes` counts), which does
 *   include whatever else the server was doing.
 */
import * as BenchDatabase from "../BenchDatabase.ts"
import { progressEveryMs, progressJobMs, progressQuiet, progressReporting } from "../BenchKinds.ts"
import { decimal, integer, medianRange, ratio, table } from "../Markdown.ts"
import type { Context, Section } from "../Scenario.ts"
import { type Summary, summarize } from "../Stats.ts"
import * as OurDrain from "./OurDrain.ts"

const concurrency = 200

interface Counters {
  readonly updates: number
  readonly hotUpdates: number
  readonly lsn: string
}

interface Measured {
  readonly jobsPerSecond: number
  readonly updatesPerJob: number
  readonly hotUpdatesPerJob: number
  readonly walBytesPerJob: number
  readonly serverWalBytesPerJob: number
}

const counters = async (db: BenchDatabase.BenchDatabase): Promise<Counters> => {
  const [row] = await db.sql`
    SELECT coalesce((SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'jobs'), 0)::bigint AS upd,
           coalesce((SELECT n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'jobs'), 0)::bigint AS hot,
           pg_current_wal_flush_lsn()::text AS lsn`
  return { updates: Number(row.upd), hotUpdates: Number(row.hot), lsn: String(row.lsn) }
}

/** Waits until no session but the harness's own is connected to the run's database (the workers' stats are in). */
const workersGone = async (db: BenchDatabase.BenchDatabase) => {
  const deadline = Date.now() + 10_000
  for (;;) {
    // the worker's sessions name themselves `jobq...`; the harness's pool names none
    const [{ n }] = await db.sql`
      SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND application_name LIKE 'jobq%'`
    if (Number(n) === 0 || Date.now() > deadline) break
    await Bun.sleep(100)
  }
  // a session's last statistics are flushed as it ends; give the stats a moment past that
  await Bun.sleep(500)
}

const walBytes = async (db: BenchDatabase.BenchDatabase, from: string, to: string) => {
  const [row] = await db.sql`
    SELECT pg_wal_lsn_diff(${to}::pg_lsn, ${from}::pg_lsn)::bigint AS server,
           (SELECT coalesce(sum(record_length), 0) FROM pg_get_wal_records_info(${from}::pg_lsn, ${to}::pg_lsn)
            WHERE block_ref LIKE '%/' || (SELECT oid FROM pg_database WHERE datname = current_database()) || '/%'
           )::bigint AS own`
  return { server: Number(row.server), own: Number(row.own) }
}

const measure = async (
  context: Context,
  db: BenchDatabase.BenchDatabase,
  kind: string,
  backlog: number,
  label: string
): Promise<Measured> => {
  // other work on the shared server writes WAL fast and its CREATE DATABASEs checkpoint often, so the
  // run's WAL would be recycled before it is read: a temporary slot keeps it, and goes with its session
  const slotSession = await db.sql.reserve()
  const slot = `jobq_bench_progress_${process.pid}`
  try {
    await slotSession`SELECT pg_create_physical_replication_slot(${slot}, true, true)`
    return await measureKept(context, db, kind, backlog, label)
  } finally {
    // temporary: dropped with its session in any case; dropped here since the session goes back to the pool
    await slotSession`SELECT pg_drop_replication_slot(${slot})`.catch(() => undefined)
    slotSession.release()
  }
}

const measureKept = async (
  context: Context,
  db: BenchDatabase.BenchDatabase,
  kind: string,
  backlog: number,
  label: string
): Promise<Measured> => {
  let before: Counters | undefined
  const drained = await OurDrain.run(
    db,
    {
      backlog,
      concurrency,
      processes: 1,
      kind,
      timeoutMs: 120_000,
      prepare: async () => {
        before = await counters(db)
        return 0
      }
    },
    label
  )
  await workersGone(db)
  const after = await counters(db)
  if (before === undefined) throw new Error(`${label}: no counters before the drain`)
  const wal = await walBytes(db, before.lsn, after.lsn)
  const measured = {
    jobsPerSecond: drained.jobsPerSecond,
    updatesPerJob: (after.updates - before.updates) / backlog,
    hotUpdatesPerJob: (after.hotUpdates - before.hotUpdates) / backlog,
    walBytesPerJob: wal.own / backlog,
    serverWalBytesPerJob: wal.server / backlog
  }
  context.log(
    `progress ${kind}: ${integer(measured.jobsPerSecond)} jobs/s, ${decimal(measured.updatesPerJob)} updates/job (${decimal(measured.hotUpdatesPerJob)} HOT), ${integer(measured.walBytesPerJob)} WAL bytes/job (server ${integer(measured.serverWalBytesPerJob)})`
  )
  return measured
}

const loadAverage = async () => (await Bun.file("/proc/loadavg").text()).split(" ").slice(0, 3).join(" ")

export const run = async (context: Context): Promise<Section> => {
  const backlog = context.quick ? 1_000 : 2_400
  const loadBefore = await loadAverage()
  const reporting: Array<Measured> = []
  const quiet: Array<Measured> = []
  await BenchDatabase.using("progress", async (db) => {
    await db.sql`CREATE EXTENSION IF NOT EXISTS pg_walinspect`
    for (let i = 0; i < context.runs; i++) {
      const order =
        i % 2 === 0
          ? ([progressQuiet, progressReporting] as const)
          : ([progressReporting, progressQuiet] as const)
      for (const kind of order) {
        const m = await measure(context, db, kind.name, backlog, `progress-${i}-${kind.name}`)
        ;(kind === progressReporting ? reporting : quiet).push(m)
      }
    }
  })
  const loadAfter = await loadAverage()
  const pick = (runs: ReadonlyArray<Measured>, f: (m: Measured) => number): Summary => summarize(runs.map(f))
  const paired = summarize(reporting.map((r, i) => r.jobsPerSecond / quiet[i]!.jobsPerSecond))
  const row = (name: string, runs: ReadonlyArray<Measured>, ratioCell: string) => [
    name,
    medianRange(pick(runs, (m) => m.jobsPerSecond)),
    ratioCell,
    medianRange(
      pick(runs, (m) => m.updatesPerJob),
      (n) => decimal(n)
    ),
    medianRange(
      pick(runs, (m) => m.hotUpdatesPerJob),
      (n) => decimal(n)
    ),
    medianRange(pick(runs, (m) => m.walBytesPerJob)),
    medianRange(pick(runs, (m) => m.serverWalBytesPerJob))
  ]
  const cost = 1 - paired.median
  const extra = (f: (m: Measured) => number) => summarize(reporting.map((r, i) => f(r) - f(quiet[i]!))).median
  const extraUpdates = extra((m) => m.updatesPerJob)
  const extraHot = extra((m) => m.hotUpdatesPerJob)
  const extraWal = extra((m) => m.walBytesPerJob)
  const ideal = concurrency / (progressJobMs / 1000)
  const markdown = [
    `One worker process (\`bun src/worker.ts\`, WORKER_CONCURRENCY ${concurrency}, WORKER_PREFETCH 500) drains ${integer(backlog)} jobs${context.quick ? " (quick mode; full mode 2,400)" : ""} that each run ${integer(progressJobMs)} ms in ${progressEveryMs} ms steps (\`Effect.sleep\`), at most ${integer(ideal)} jobs/s with ${concurrency} at once. "reporting" reports \`{ step, of }\` after every step (10 reports a job; the worker writes at most one a second per job, so with 1 s jobs one write a job, made just before the job settles); "quiet" is the same handler without the reports. Timed as the drain scenario (first handler call to last completion, behind the start gate); ${context.runs} pairs, the order alternating (quiet first in pair 1). The ratio is paired: reporting ÷ quiet of the same pair, median (min – max). Per job, from just before the workers start to after they exit: updates of \`jobs\` (\`n_tup_upd\`, of them HOT \`n_tup_hot_upd\`, pg_stat_user_tables of the run's own database), WAL bytes of records touching the run's database (pg_walinspect; commit records excluded), and WAL bytes of the whole server over the same span (the \`pg_stat_wal.wal_bytes\` measure; it includes whatever else ran on the shared server, so it is an upper bound). Load average (1/5/15 min) at the scenario's start / end: ${loadBefore} / ${loadAfter}.`,
    "",
    table(
      [
        "handler",
        "jobs/s",
        "÷ quiet",
        "updates/job",
        "HOT updates/job",
        "WAL B/job (own db)",
        "WAL B/job (server)"
      ],
      [
        row("quiet", quiet, "1.00x"),
        row(
          "reporting every 100 ms",
          reporting,
          `${ratio(paired.median)} (${ratio(paired.min)} – ${ratio(paired.max)})`
        )
      ]
    ),
    "",
    `Reporting progress every ${progressEveryMs} ms costs ${decimal(cost * 100, 1)}% of drain throughput (paired median; target < 5%, i.e. at least 0.95x): **${paired.median >= 0.95 ? "met" : `missed by ${decimal((0.95 - paired.median) * 100, 1)} points`}**. The database pays ${decimal(extraUpdates)} more updates a job (paired median; the expected one write a job, blurred by lease renewals that depend on timing), ${decimal(extraHot)} of them HOT (the \`progress\` column has no index, but a HOT update also needs room on the row's page), and a WAL difference of ${integer(extraWal)} bytes a job (own database, paired median; checkpoints forced by other work move it more). The last value is written before the job settles, while it holds its slot: one unbatched commit a job.`
  ].join("\n")
  return {
    title: "Progress reports: what they cost a drain",
    markdown,
    figures: {
      progressRatio: paired.median,
      progressExtraUpdatesPerJob: extraUpdates,
      progressExtraWalPerJob: extraWal
    }
  }
}
