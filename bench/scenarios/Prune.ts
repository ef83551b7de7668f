/**
 * Pruning off the hot path: pickup latency (the pickup scenario's probe: stamp jobs enqueued one at a time
 * at 50/s, one worker process of concurrency 8) over a table holding a million succeeded jobs that finished
 * two days ago, first with a worker that keeps them, then with one whose JOB_RETENTION_SUCCEEDED (1 day)
 * makes it, as the elected maintainer, prune them in batches while the probe runs. Only the chunks of the
 * probe that ended while old jobs were still left count as "while pruning".
 */
import * as BenchDatabase from "../BenchDatabase.ts"
import { modulePath } from "../BenchKinds.ts"
import { decimal, integer, ratio, table } from "../Markdown.ts"
import * as QueueClient from "../QueueClient.ts"
import type { Context, Section } from "../Scenario.ts"
import { type Latency, latency } from "../Stats.ts"
import * as WorkerProcess from "../WorkerProcess.ts"
import { probe } from "./Pickup.ts"

/** Jobs per probe chunk: 1 s at 50/s (the pruning lasts seconds: it must be sampled finely). */
const chunk = 50

const oldLeft = (db: BenchDatabase.BenchDatabase) =>
  db.sql`
    SELECT EXISTS (
      SELECT 1 FROM jobs WHERE status = 'succeeded' AND finished_at < now() - interval '1 day'
    ) AS left`.then((rows) => Boolean(rows[0].left))

const oldCount = (db: BenchDatabase.BenchDatabase) =>
  db.sql`SELECT count(*)::int AS n FROM jobs WHERE status = 'succeeded' AND finished_at < now() - interval '1 day'`.then(
    (rows) => Number(rows[0].n)
  )

export const run = async (context: Context): Promise<Section> => {
  const finished = context.quick ? 400_000 : 1_000_000
  const baselineChunks = context.quick ? 10 : 20
  let quiet: Array<number> = []
  let pruning: Array<number> = []
  let pruneSeconds = Number.NaN
  let pruned = 0
  await BenchDatabase.using("prune", async (db) => {
    await db.sql`
      INSERT INTO jobs (queue, kind, payload, status, attempts, started_at, finished_at, created_at, run_at)
      SELECT 'default', 'noop', '{}'::jsonb, 'succeeded', 1, now() - interval '2 days',
             now() - interval '2 days', now() - interval '2 days', now() - interval '2 days'
      FROM generate_series(1, ${finished}::int)`
    await db.sql`ANALYZE jobs`
    await db.sql`CHECKPOINT`
    const client = QueueClient.make(db.url, 2)
    const spawn = (name: string, env: Record<string, string> = {}) =>
      WorkerProcess.spawn(db.url, name, { WORKER_CONCURRENCY: "8", JOBS_MODULE: modulePath, ...env })
    try {
      const keeper = spawn("prune-keeper")
      try {
        const pickup = probe(db, client)
        await pickup.warmUp()
        for (let i = 0; i < baselineChunks; i++) {
          quiet = [...quiet, ...(await pickup.measure(chunk))]
          context.log(`prune baseline chunk ${i + 1}: p99 so far ${decimal(latency(quiet).p99)} ms`)
        }
      } finally {
        await keeper.stop()
      }
      // the keeper resigned as maintainer when it stopped: the pruner is elected at once and starts
      const before = await oldCount(db)
      const began = performance.now()
      const pruner = spawn("prune-pruner", { JOB_RETENTION_SUCCEEDED: "1 day" })
      try {
        const pickup = probe(db, client)
        await pickup.warmUp()
        for (let i = 0; i < 600; i++) {
          const samples = await pickup.measure(chunk)
          const still = await oldLeft(db)
          if (still) pruning = [...pruning, ...samples]
          context.log(
            `prune chunk ${i + 1} ${still ? "while pruning" : "after pruning"}: p99 ${decimal(latency(samples).p99)} ms`
          )
          if (!still) break
        }
        while (await oldLeft(db)) await Bun.sleep(200)
        pruneSeconds = (performance.now() - began) / 1000
        pruned = before - (await oldCount(db))
      } finally {
        await pruner.stop()
      }
    } finally {
      await client.dispose()
    }
  })
  const a: Latency = latency(quiet)
  const b: Latency = latency(pruning)
  const grew = b.p99 / a.p99
  const row = (name: string, l: Latency) => [
    name,
    String(l.count),
    decimal(l.p50),
    decimal(l.p95),
    decimal(l.p99),
    decimal(l.max)
  ]
  const markdown = [
    `A table holding ${integer(finished)} succeeded jobs that finished two days ago${context.quick ? " (quick mode; full mode holds 1,000,000)" : ""}. The pickup scenario's probe (stamp jobs enqueued one at a time at 50/s, one worker process of concurrency 8) in chunks of ${chunk}: ${baselineChunks} chunks with a worker that keeps finished jobs, then, with a worker whose JOB_RETENTION_SUCCEEDED is 1 day (the maintainer: it prunes 1,000 per statement, resting twice as long as each took), chunks for as long as old jobs remain; only the chunks that ended while some remained count. Latency in milliseconds over all samples of each phase.`,
    "",
    table(["phase", "jobs", "p50", "p95", "p99", "max"], [row("keeping", a), row("while pruning", b)]),
    "",
    `Pruned ${integer(pruned)} jobs in ${decimal(pruneSeconds, 1)} s (${integer(pruned / pruneSeconds)} jobs/s, start-up of the pruning worker included). Target: pickup p99 while pruning at most 2x the p99 without: **${grew <= 2 ? "met" : "missed"}** (${ratio(grew)}).`
  ].join("\n")
  return { title: "Pruning finished jobs while picking up", markdown, figures: { pruneP99Ratio: grew } }
}
