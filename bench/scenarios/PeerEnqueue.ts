/**
 * Bulk enqueue of the drain's backlog (20,000 no-op jobs; 3,000 in quick mode) beside the peers, run after
 * run in turn: ours with `Queue.enqueueMany` (1,000 jobs a call, as the enqueue section sends them, and the
 * whole backlog in one call) from the harness process, and each peer's bulk API from its driver script
 * under Node 22 (bench/peers/*.mjs, BENCH_MODE=enqueue): graphile-worker's `add_jobs` SQL function and its
 * `addJobs`, pg-boss's `insert`, BullMQ's `addBulk` on each of its stores. Every side makes one untimed
 * warm-up call first and times one pass over the backlog; the tables are emptied between runs.
 */
import { Effect } from "effect"
import { Queue } from "../../src/queue/Queue.ts"
import type { BenchDatabase } from "../BenchDatabase.ts"
import { integer, medianRange, ratio, table } from "../Markdown.ts"
import * as QueueClient from "../QueueClient.ts"
import type { Context } from "../Scenario.ts"
import { summarize } from "../Stats.ts"
import { backlogSize } from "./Drain.ts"
import * as PeerDrain from "./PeerDrain.ts"

const oursByThousand = "ours, `Queue.enqueueMany`, 1,000 a call"
const oursOneCall = "ours, `Queue.enqueueMany`, one call"

export const run = async (context: Context, db: BenchDatabase) => {
  const jobs = backlogSize(context.quick)
  const rates = new Map<string, Array<number>>()
  const record = (name: string, rate: number) => {
    rates.set(name, [...(rates.get(name) ?? []), rate])
    context.log(`bulk enqueue ${name}: ${integer(rate)} jobs/s`)
  }
  const redis = await PeerDrain.redisServers(PeerDrain.peers, context.log)
  const peers = PeerDrain.runnable(redis.servers)
  const client = QueueClient.make(db.url, 4)
  try {
    const queue = await client.runPromise(
      Effect.gen(function* () {
        return yield* Queue
      })
    )
    const batch = (n: number) => Array.from({ length: n }, () => ({ kind: "noop", payload: {} }))
    const timed = async (calls: ReadonlyArray<number>) => {
      await db.sql`TRUNCATE jobs`
      const inputs = calls.map(batch)
      const t = performance.now()
      for (const input of inputs) await client.runPromise(queue.enqueueMany(input))
      return jobs / ((performance.now() - t) / 1000)
    }
    await timed([1000]) // warm-up
    for (let r = 0; r < context.runs; r++) {
      record(oursByThousand, await timed(Array.from({ length: jobs / 1000 }, () => 1000)))
      record(oursOneCall, await timed([jobs]))
      for (const peer of peers) {
        for (const [api, rate] of Object.entries(await PeerDrain.enqueue(peer, db, redis.servers, jobs)))
          record(`${peer.name}, \`${api}\``, rate)
      }
    }
    await db.sql`TRUNCATE jobs`
  } finally {
    await client.dispose()
    await redis.stop()
  }
  const median = (name: string) => summarize(rates.get(name) ?? [Number.NaN]).median
  /** The run-by-run ratios of `ours` to `name`: median (min – max). */
  const pairedRatios = (ours: string, name: string) => {
    const mine = rates.get(ours) ?? []
    const theirs = rates.get(name) ?? []
    return summarize(theirs.map((t, i) => (mine[i] ?? Number.NaN) / t))
  }
  const paired = (ours: string, name: string) => {
    const r = pairedRatios(ours, name)
    return `${ratio(r.median)} (${ratio(r.min)} – ${ratio(r.max)})`
  }
  const rows = [...rates.keys()].map((name) => [
    name,
    medianRange(summarize(rates.get(name)!)),
    name.startsWith("ours") ? "" : paired(oursByThousand, name),
    name.startsWith("ours") ? "" : paired(oursOneCall, name)
  ])
  const graphileSql = "graphile-worker 0.18.0, `add_jobs SQL`"
  const graphileSqlByThousand = "graphile-worker 0.18.0, `add_jobs SQL, 1,000 a call`"
  // each shape against the same shape: 1,000 a call against 1,000 a call, one call against one call
  const byThousand = pairedRatios(oursByThousand, graphileSqlByThousand).median
  const oneCall = pairedRatios(oursOneCall, graphileSql).median
  const share = Math.min(byThousand, oneCall)
  const markdown = [
    `Bulk enqueue of ${integer(jobs)} no-op jobs, ${context.runs} runs, every system in turn within a run; median (min – max). Ours from the harness process (Bun) over a pool of 4 connections; each peer from its driver script under Node 22 (one untimed warm-up call of 100 jobs first): graphile-worker's \`add_jobs\` SQL function called directly with the specs as one JSON parameter (as its \`addJobs\` sends them) returning only a count, in one call of the whole backlog and 1,000 a call (one call after another, as ours), and \`addJobs\` itself; pg-boss's \`insert\`; BullMQ's \`addBulk\` (Redis: one MULTI of the jobs' scripts; PostgreSQL: its backend's bulk insert). One call of the whole backlog for every other peer API.`,
    "",
    table(
      ["system, API", "jobs/s", "ours (1,000 a call) ÷ it, paired", "ours (one call) ÷ it, paired"],
      rows
    ),
    "",
    `Target (issue #21): \`Queue.enqueueMany\` ≥ graphile-worker's \`add_jobs\` SQL function, call for call: **${share >= 1 ? "met" : "missed"}** (1,000 a call against 1,000 a call ${ratio(byThousand)}, one call against one call ${ratio(oneCall)}, paired medians; ours at 1,000 a call against its one call: ${ratio(median(oursByThousand) / median(graphileSql))}).`
  ].join("\n")
  return {
    markdown,
    figures: { enqueueManyBulk: median(oursByThousand), graphileAddJobsSql: median(graphileSql) }
  }
}
