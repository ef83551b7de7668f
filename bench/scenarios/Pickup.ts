/**
 * Scenario 4, pickup latency: an idle queue and one worker process (concurrency 8, defaults otherwise);
 * the harness process enqueues `stamp` jobs one at a time with `Queue.enqueue` at about 50/s. Latency =
 * the handler's start (returned as the job's result) minus the moment the enqueue call began, both read
 * from the same system clock. The worker learns of each job by LISTEN/NOTIFY.
 */
import { Queue } from "../../src/queue/Queue.ts"
import * as BenchDatabase from "../BenchDatabase.ts"
import { modulePath, now } from "../BenchKinds.ts"
import { decimal, medianRange, table } from "../Markdown.ts"
import * as QueueClient from "../QueueClient.ts"
import type { Context, Section } from "../Scenario.ts"
import { type Latency, latency, summarize } from "../Stats.ts"
import * as WorkerProcess from "../WorkerProcess.ts"
import * as PeerDrain from "./PeerDrain.ts"

const ratePerSecond = 50
const warmUpJobs = 100

/** Waits until every one of `ids` succeeded (looked up by id: the table may hold a million other jobs). */
export const waitAllDone = async (
  db: BenchDatabase.BenchDatabase,
  ids: ReadonlyArray<string>,
  timeoutMs: number
) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const [{ n }] = await db.sql`
      SELECT count(*)::int AS n FROM jobs WHERE id = ANY(${ids}::uuid[]) AND status = 'succeeded'`
    if (Number(n) >= ids.length) return
    if (Date.now() > deadline) throw new Error("pickup: jobs not all done in time")
    await Bun.sleep(50)
  }
}

/**
 * Pickup as the harness sees it, against whichever worker serves the database: `measure(n)` enqueues `n`
 * stamp jobs at the scenario's rate, waits for them, and answers each one's latency (ms). `warmUp` runs
 * one job (the worker is up and listening once it has run it) and an unreported warm-up at the same rate,
 * so that the first measured run does not time both processes' hot paths being compiled.
 */
export const probe = (db: BenchDatabase.BenchDatabase, client: ReturnType<typeof QueueClient.make>) => {
  const enqueue = () => client.runPromise(Queue.use((queue) => queue.enqueue({ kind: "stamp", payload: {} })))
  /** Enqueues `n` stamp jobs at the scenario's rate; answers when each enqueue call began, by job id. */
  const paced = async (n: number) => {
    const began = new Map<string, number>()
    const t0 = now()
    for (let i = 0; i < n; i++) {
      const due = t0 + (i * 1000) / ratePerSecond
      const wait = due - now()
      if (wait > 0) await Bun.sleep(wait)
      const at = now()
      const { job } = await enqueue()
      began.set(job.id, at)
    }
    return began
  }
  return {
    warmUp: async () => {
      const { job } = await enqueue()
      await waitAllDone(db, [job.id], 20_000)
      await waitAllDone(db, [...(await paced(warmUpJobs)).keys()], 30_000)
    },
    measure: async (n: number) => {
      const began = await paced(n)
      const ids = [...began.keys()]
      await waitAllDone(db, ids, 30_000)
      const rows: Array<{ id: string; result: { handlerStartedAt: number } }> = await db.sql`
        SELECT id::text AS id, result FROM jobs WHERE id = ANY(${ids}::uuid[])`
      return rows.map((row) => row.result.handlerStartedAt - began.get(row.id)!)
    }
  }
}

const ours = "ours (library enqueue, worker process)"

export const run = async (context: Context): Promise<Section> => {
  const count = context.quick ? 150 : 1000
  const perRun = new Map<string, Array<Latency>>()
  const record = (system: string, l: Latency) => {
    perRun.set(system, [...(perRun.get(system) ?? []), l])
    context.log(
      `pickup ${system}: p50 ${decimal(l.p50)} ms, p95 ${decimal(l.p95)}, p99 ${decimal(l.p99)}, max ${decimal(l.max)}`
    )
  }
  const candidates = context.peersAvailable ? PeerDrain.peers.filter((p) => p.pickup) : []
  const redis = await PeerDrain.redisServers(candidates, context.log)
  const peers = PeerDrain.runnable(redis.servers).filter((p) => p.pickup)
  try {
    await BenchDatabase.using("pickup", async (db) => {
      const worker = WorkerProcess.spawn(db.url, "pickup", {
        WORKER_CONCURRENCY: "8",
        JOBS_MODULE: modulePath
      })
      const client = QueueClient.make(db.url, 2)
      try {
        const pickup = probe(db, client)
        await pickup.warmUp()
        for (let r = 0; r < context.runs; r++) {
          record(ours, latency(await pickup.measure(count)))
          for (const peer of peers) {
            const samples = await PeerDrain.pickup(peer, db, redis.servers, {
              jobs: count,
              perSecond: ratePerSecond,
              warmUp: warmUpJobs,
              concurrency: 8
            })
            record(peer.name, latency(samples))
          }
        }
      } finally {
        await client.dispose()
        await worker.stop()
      }
    })
  } finally {
    await redis.stop()
  }
  const stat = (system: string, pick: (l: Latency) => number) =>
    medianRange(summarize((perRun.get(system) ?? []).map(pick)), (n) => decimal(n))
  const median = (system: string, pick: (l: Latency) => number) =>
    summarize((perRun.get(system) ?? []).map(pick)).median
  const p50 = median(ours, (l) => l.p50)
  const p99 = median(ours, (l) => l.p99)
  const graphile = "graphile-worker 0.18.0"
  const graphileP50 = median(graphile, (l) => l.p50)
  const markdown = [
    `${count} jobs per run${context.quick ? " (quick mode; full mode sends 1,000)" : ""}, one enqueue at a time at ${ratePerSecond}/s, to an idle worker at concurrency 8, after an unreported warm-up of ${warmUpJobs} jobs at the same rate. Ours: \`Queue.enqueue\` from the harness process, one worker process (\`bun src/worker.ts\`, defaults otherwise, WORKER_METRICS_PORT=0); latency = the handler's start (returned as the job's result) minus the moment the enqueue call began, both on the system clock. Peers: producer and worker in one Node 22 process (bench/peers/*.mjs, BENCH_MODE=pickup; a fresh process each run), defaults otherwise: graphile-worker \`addJob\` to \`run()\` (no local queue; LISTEN/NOTIFY), BullMQ \`Queue.add\` to a \`Worker\` on each store; latency = handler start minus the add call's start on \`performance.now()\`. pg-boss is left out (it polls, every 0.5 s at the least). ${context.runs} runs, every system in turn within a run; each cell is the median of the runs' percentiles (min – max), in milliseconds.`,
    "",
    table(
      ["system", "p50", "p95", "p99", "max"],
      [...perRun.keys()].map((system) => [
        system,
        stat(system, (l) => l.p50),
        stat(system, (l) => l.p95),
        stat(system, (l) => l.p99),
        stat(system, (l) => l.max)
      ])
    ),
    "",
    `Target p50 < 2.5 ms: **${p50 < 2.5 ? "met" : "missed"}** (${decimal(p50)} ms). Target p99 < 5 ms: **${p99 < 5 ? "met" : "missed"}** (${decimal(p99)} ms).`,
    ...(Number.isFinite(graphileP50)
      ? [
          `Target (issue #21) p50 ≤ graphile-worker's in the same run: **${p50 <= graphileP50 ? "met" : "missed"}** (${decimal(p50)} against ${decimal(graphileP50)} ms).`
        ]
      : [])
  ].join("\n")
  return { title: "Pickup latency", markdown, figures: { pickupP50: p50, pickupP99: p99 } }
}
