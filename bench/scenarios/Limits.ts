/**
 * Steered queues: the drain of no-op jobs by two worker processes of 32 slots each (OurDrain, so the same
 * start gate and clock as the drain scenario), for the same backlog four ways, taken in turn within each
 * run (the two unlimited cases swapping places each run) so that their ratios compare runs taken side by
 * side:
 *
 * - unlimited: the drain scenario's case;
 * - unlimited, steered queues present: the same, while another queue is paused with a backlog of its own
 *   ahead of it in claim order and a third queue is limited (so the workers claim queue by queue and look
 *   at the limited queue too): what limits on other queues cost an unlimited one;
 * - concurrency limit 8 over both processes;
 * - rate limit 1,000 starts per second.
 */
import * as BenchDatabase from "../BenchDatabase.ts"
import { integer, medianRange, ratio, table } from "../Markdown.ts"
import type { Context, Section } from "../Scenario.ts"
import { summarize } from "../Stats.ts"
import * as OurDrain from "./OurDrain.ts"

const concurrency = 32
const processes = 2
const pausedBacklog = 10_000

interface Case {
  readonly name: string
  readonly prepare?: (db: BenchDatabase.BenchDatabase) => Promise<number>
}

const limit = (settings: string) => async (db: BenchDatabase.BenchDatabase) => {
  await db.sql.unsafe(`INSERT INTO queues (name) VALUES ('default') ON CONFLICT DO NOTHING`)
  await db.sql.unsafe(`UPDATE queues SET ${settings} WHERE name = 'default'`)
  return 0
}

const cases: ReadonlyArray<Case> = [
  { name: "unlimited" },
  {
    name: "unlimited, steered queues present",
    prepare: async (db) => {
      // older than the measured backlog, so it comes first in the order every claim reads
      await db.sql`
        INSERT INTO jobs (queue, kind, payload, run_at)
        SELECT 'paused-elsewhere', 'noop', '{}'::jsonb, now() - interval '1 hour'
        FROM generate_series(1, ${pausedBacklog})`
      await db.sql`
        INSERT INTO queues (name, paused_at) VALUES ('paused-elsewhere', now())
        ON CONFLICT (name) DO UPDATE SET paused_at = now()`
      await db.sql`
        INSERT INTO queues (name, concurrency_limit) VALUES ('limited-elsewhere', 8)
        ON CONFLICT (name) DO UPDATE SET concurrency_limit = 8`
      return pausedBacklog
    }
  },
  {
    name: "concurrency limit 8",
    prepare: limit("concurrency_limit = 8, rate_max = NULL, rate_per_ms = NULL")
  },
  {
    name: "rate limit 1,000/s",
    prepare: limit(
      "concurrency_limit = NULL, rate_max = 1000, rate_per_ms = 1000, rate_log_at = '{}', rate_log_n = '{}'"
    )
  }
]

export const run = async (context: Context): Promise<Section> => {
  const backlog = context.quick ? 3_000 : 20_000
  const results = new Map<string, Array<number>>()
  await BenchDatabase.using("limits", async (db) => {
    for (let i = 0; i < context.runs; i++) {
      // the two unlimited cases swap places every run, so that neither always follows the rate-limited one
      const order = i % 2 === 0 ? [0, 1, 2, 3] : [1, 0, 2, 3]
      for (const index of order) {
        const c = cases[index]!
        // each case starts with no queue paused or limited
        await db.sql`
          UPDATE queues SET paused_at = NULL, paused_by = NULL, pause_reason = NULL, concurrency_limit = NULL,
                            rate_max = NULL, rate_per_ms = NULL, rate_log_at = '{}', rate_log_n = '{}'`
        const value = (
          await OurDrain.run(
            db,
            {
              backlog,
              concurrency,
              processes,
              timeoutMs: 180_000,
              ...(c.prepare === undefined ? {} : { prepare: c.prepare })
            },
            `limits-${i}-${index}`
          )
        ).jobsPerSecond
        results.set(c.name, [...(results.get(c.name) ?? []), value])
        context.log(`limits ${c.name} run ${i + 1}: ${integer(value)} jobs/s`)
      }
    }
  })
  const base = results.get("unlimited") ?? []
  const paired = (name: string) => summarize((results.get(name) ?? []).map((v, i) => v / base[i]!))
  const rows = cases.map((c) => {
    const values = results.get(c.name) ?? [Number.NaN]
    const r = paired(c.name)
    return [
      c.name,
      medianRange(summarize(values)),
      c.name === "unlimited" ? "1.00x" : `${ratio(r.median)} (${ratio(r.min)} – ${ratio(r.max)})`
    ]
  })
  const steered = paired("unlimited, steered queues present").median
  const markdown = [
    `${processes} worker processes (\`bun src/worker.ts\`) of WORKER_CONCURRENCY ${concurrency}, WORKER_PREFETCH 500, drain a backlog of ${integer(backlog)} no-op jobs${context.quick ? " (quick mode; full mode 20,000)" : ""} in queue \`default\`, timed as in the drain scenario (first handler call to last completion, behind the same start gate). The four cases are taken in turn within each of ${context.runs} runs; the ratio is paired: run i of a case divided by run i of the unlimited case, median (min – max). "Steered queues present": another queue is paused with ${integer(pausedBacklog)} ready jobs older than the measured backlog, and a third queue has a concurrency limit and no jobs, so the workers claim queue by queue and look at limited queues as well.`,
    "",
    table(["case", "jobs/s", "÷ unlimited"], rows),
    "",
    `Limits on other queues cost the unlimited queue ${ratio(steered)} of its drain (target: within 5%, i.e. at least 0.95x): **${steered >= 0.95 ? "met" : "missed"}**. A concurrency limit of 8 over both processes allows 8 jobs at a time: with no-op jobs its pace is that of a cycle of claiming 8 jobs and completing them, and a completion waits for its WAL flush (the disk of this shared machine sets the pace, hence the spread). A rate limit of 1,000/s allows 1,000 jobs/s; the first window starts as fast as the slots take jobs, so a short backlog drains a little faster than the rate.`
  ].join("\n")
  return { title: "Steered queues: limits and their cost", markdown, figures: { steeredRatio: steered } }
}
