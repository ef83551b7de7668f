/**
 * Scenario 1 and 3: drain throughput of no-op jobs from a backlog, at each concurrency, for our worker
 * (one process, and two), and for the peers at the same concurrency in the same loop: for every run index
 * each system drains the same backlog once, in turn, so each ratio compares two runs taken side by side.
 */
import type { SQL } from "bun"
import * as BenchDatabase from "../BenchDatabase.ts"
import { decimal, integer, medianRange, ratio, table } from "../Markdown.ts"
import type { ChartPoint, Context, Section } from "../Scenario.ts"
import { type Summary, summarize } from "../Stats.ts"
import * as OurDrain from "./OurDrain.ts"
import * as PeerDrain from "./PeerDrain.ts"

/** The levels drained; BENCH_DRAIN_LEVELS (e.g. `8,32`) narrows them for a run by hand. */
export const concurrencies = (quick: boolean) =>
  process.env.BENCH_DRAIN_LEVELS?.split(",").map(Number) ?? (quick ? [1, 8, 32] : [1, 2, 4, 8, 16, 32])
export const backlogSize = (quick: boolean) => (quick ? 3_000 : 20_000)

interface System {
  readonly name: string
  /** Drains only at these levels (of those the scenario runs); all when absent. */
  readonly levels?: ReadonlyArray<number>
  /** What holds its jobs: shown beside its CPU figures. */
  readonly redis?: boolean
  readonly drain: (concurrency: number, backlog: number, label: string) => Promise<PeerDrain.PeerDrainRun>
}

const ourName = "ours (1 process)"
const ourDeletingName = "ours, JOB_RETENTION=0"
const ourDefaultName = "ours, defaults"
const ourDefaultDeletingName = "ours, defaults, JOB_RETENTION=0"
/** Product defaults (no WORKER_PREFETCH) are drained at the levels the issue's targets name. */
const targetLevels = [8, 32]

const ours = (
  db: BenchDatabase.BenchDatabase,
  admin: SQL,
  name: string,
  options: { readonly deleteSucceeded: boolean; readonly defaultPrefetch: boolean }
): System => ({
  name,
  ...(options.defaultPrefetch ? { levels: targetLevels } : {}),
  drain: async (concurrency, backlog, label) => {
    const result = await OurDrain.run(
      db,
      { backlog, concurrency, processes: 1, cpuFrom: admin, ...options },
      `${label}${options.deleteSucceeded ? "-delete" : ""}${options.defaultPrefetch ? "-defaults" : ""}`
    )
    return {
      jobsPerSecond: result.jobsPerSecond,
      postgresCpuSeconds: result.postgresCpuSeconds ?? Number.NaN,
      ...(result.workerCpuSeconds === undefined ? {} : { workerCpuSeconds: result.workerCpuSeconds })
    }
  }
})

export const run = async (context: Context): Promise<Section> => {
  const backlog = backlogSize(context.quick)
  const levels = concurrencies(context.quick)
  const results = new Map<string, Map<number, Array<number>>>()
  /**
   * CPU µs per job by system and level: Postgres backends, redis-server for BullMQ on Redis, and the worker's
   * own process (ours under Bun, a peer's script under Node).
   */
  const postgresCpu = new Map<string, Map<number, Array<number>>>()
  const redisCpu = new Map<string, Map<number, Array<number>>>()
  const workerCpu = new Map<string, Map<number, Array<number>>>()
  const record = (
    into: Map<string, Map<number, Array<number>>>,
    system: string,
    concurrency: number,
    value: number
  ) => {
    const bySystem = into.get(system) ?? new Map<number, Array<number>>()
    into.set(system, bySystem)
    bySystem.set(concurrency, [...(bySystem.get(concurrency) ?? []), value])
  }
  const buffers = new Map<string, Array<number>>()
  const largerBuffers = context.quick ? [2000] : [1000, 2000]
  const admin = BenchDatabase.admin()
  const redis = context.peersAvailable
    ? await PeerDrain.redisServers(PeerDrain.peers, context.log)
    : { servers: {}, stop: async () => undefined }
  const peers = context.peersAvailable ? PeerDrain.runnable(redis.servers) : []
  const peerNames = peers.map((p) => p.name)
  const systems: Array<System> = []
  const failures: Array<string> = []

  try {
    await BenchDatabase.using("drain", async (db) => {
      systems.push(
        ours(db, admin, ourDefaultName, { deleteSucceeded: false, defaultPrefetch: true }),
        ours(db, admin, ourDefaultDeletingName, { deleteSucceeded: true, defaultPrefetch: true }),
        ours(db, admin, ourName, { deleteSucceeded: false, defaultPrefetch: false }),
        ours(db, admin, ourDeletingName, { deleteSucceeded: true, defaultPrefetch: false })
      )
      for (const peer of peers) {
        systems.push({
          name: peer.name,
          ...(peer.levels === undefined ? {} : { levels: peer.levels }),
          redis: peer.store !== "postgres",
          drain: (concurrency, size) =>
            PeerDrain.run(peer, db, admin, redis.servers, { concurrency, backlog: size })
        })
      }
      for (const concurrency of levels) {
        for (let i = 0; i < context.runs; i++) {
          for (const system of systems) {
            if (system.levels !== undefined && !system.levels.includes(concurrency)) continue
            let result: PeerDrain.PeerDrainRun
            try {
              result = await system.drain(concurrency, backlog, `drain-c${concurrency}-${i}`)
            } catch (error) {
              // one failed run (a shared server out of connections) leaves a gap, not a failed scenario
              const message = String(error instanceof Error ? error.message : error).slice(0, 300)
              failures.push(`${system.name} at concurrency ${concurrency}, run ${i + 1}: ${message}`)
              context.log(`drain ${system.name} c=${concurrency} run ${i + 1} failed: ${message}`)
              record(results, system.name, concurrency, Number.NaN) // keeps run i paired with run i
              continue
            }
            record(results, system.name, concurrency, result.jobsPerSecond)
            if (system.redis !== true)
              record(postgresCpu, system.name, concurrency, (result.postgresCpuSeconds * 1e6) / backlog)
            if (result.redisCpuSeconds !== undefined)
              record(redisCpu, system.name, concurrency, (result.redisCpuSeconds * 1e6) / backlog)
            if (result.workerCpuSeconds !== undefined)
              record(workerCpu, system.name, concurrency, (result.workerCpuSeconds * 1e6) / backlog)
            context.log(
              `drain ${system.name} c=${concurrency} run ${i + 1}: ${integer(result.jobsPerSecond)} jobs/s${system.redis === true ? "" : `, Postgres ${decimal((result.postgresCpuSeconds * 1e6) / backlog, 1)} µs/job`}${result.redisCpuSeconds === undefined ? "" : `, redis-server ${decimal((result.redisCpuSeconds * 1e6) / backlog, 1)} µs/job`}`
            )
          }
        }
      }
      // two worker processes, each with half the slots of the largest level and with the full level each
      for (const each of [16, 32]) {
        for (let i = 0; i < context.runs; i++) {
          const value = (
            await OurDrain.run(db, { backlog, concurrency: each, processes: 2 }, `drain-2p-${each}`)
          ).jobsPerSecond
          record(results, "ours (2 processes)", each * 2, value)
          context.log(`drain ours 2 processes x c=${each} run ${i + 1}: ${integer(value)} jobs/s`)
        }
      }
      // one process with a larger claim buffer than the peers' fetch size (not in the chart)
      for (const prefetch of largerBuffers) {
        for (const concurrency of [8, 32]) {
          for (let i = 0; i < context.runs; i++) {
            const value = (
              await OurDrain.run(
                db,
                { backlog, concurrency, processes: 1, env: { WORKER_PREFETCH: String(prefetch) } },
                `drain-prefetch-${prefetch}-c${concurrency}-${i}`
              )
            ).jobsPerSecond
            const key = `${prefetch}/${concurrency}`
            buffers.set(key, [...(buffers.get(key) ?? []), value])
            context.log(
              `drain ours WORKER_PREFETCH=${prefetch} c=${concurrency} run ${i + 1}: ${integer(value)} jobs/s`
            )
          }
        }
      }
    })
  } finally {
    await redis.stop()
    await admin.close()
  }

  const summary = (system: string, concurrency: number, from = results): Summary | undefined => {
    const values = from.get(system)?.get(concurrency)?.filter(Number.isFinite)
    return values === undefined || values.length === 0 ? undefined : summarize(values)
  }
  /** Median over runs of (ours / peer) for the runs taken side by side. */
  const pairedRatio = (peer: string, concurrency: number, system: string) => {
    const mine = results.get(system)?.get(concurrency) ?? []
    const theirs = results.get(peer)?.get(concurrency) ?? []
    const ratios = theirs.map((t, i) => (mine[i] ?? Number.NaN) / t).filter(Number.isFinite)
    return ratios.length === 0 || mine.length === 0 ? undefined : summarize(ratios)
  }

  const ratioCell = (r: Summary | undefined) =>
    r === undefined ? "" : `${ratio(r.median)} (${ratio(r.min)} – ${ratio(r.max)})`
  const cpuCell = (s: Summary | undefined) => (s === undefined ? "" : medianRange(s, (n) => decimal(n, 1)))
  const rows = levels.flatMap((c) =>
    systems
      .filter((system) => results.get(system.name)?.has(c))
      .map((system) => {
        const peer = peerNames.includes(system.name)
        return [
          String(c),
          system.name,
          ((s) => (s === undefined ? "n/a" : medianRange(s)))(summary(system.name, c)),
          ...[ourDefaultName, ourName, ourDeletingName].map((mine) =>
            peer ? ratioCell(pairedRatio(system.name, c, mine)) : ""
          ),
          cpuCell(summary(system.name, c, postgresCpu)),
          cpuCell(summary(system.name, c, redisCpu)),
          cpuCell(summary(system.name, c, workerCpu))
        ]
      })
  )
  const headers = [
    "concurrency",
    "system",
    "jobs/s",
    "ours, defaults ÷ it",
    "ours ÷ it",
    "ours (retention 0) ÷ it",
    "Postgres CPU, µs/job",
    "redis-server CPU, µs/job",
    "worker process CPU, µs/job"
  ]
  const twoProcesses = [16, 32].map((each) => [
    `2 × ${each}`,
    medianRange(summary("ours (2 processes)", each * 2)!)
  ])

  const bufferRows = largerBuffers.map((prefetch) => [
    String(prefetch),
    ...[8, 32].map((c) => medianRange(summarize(buffers.get(`${prefetch}/${c}`) ?? [Number.NaN])))
  ])
  const bestBuffered = Math.max(
    ...[...buffers.values()].map((values) => summarize(values).median).filter((n) => !Number.isNaN(n))
  )

  const chart: Array<ChartPoint> = []
  for (const [system, bySystem] of results) {
    for (const [concurrency, values] of bySystem) {
      chart.push({ system, concurrency, jobsPerSecond: summarize(values).median })
    }
  }

  const best = (system: string) => Math.max(...levels.map((c) => summary(system, c)?.median ?? 0))
  const figures: Record<string, number> = {}
  for (const system of systems) figures[`${system.name}Best`] = best(system.name)

  // issue #21's drain targets, against the best level of each system (medians of runs)
  const targets: Array<string> = []
  const graphile = "graphile-worker 0.18.0"
  const graphileBest = figures[`${graphile}Best`]
  const oursDefault = figures[`${ourDefaultName}Best`]!
  const oursDeleting = figures[`${ourDeletingName}Best`]!
  const oursDefaultDeleting = figures[`${ourDefaultDeletingName}Best`]!
  const verdict = (met: boolean) => `**${met ? "met" : "missed"}**`
  if (graphileBest !== undefined) {
    const share = oursDefault / graphileBest
    targets.push(
      `Target (issue #21): defaults ≥ 1.0x graphile-worker's best level: ${verdict(share >= 1)} (our defaults' best ${integer(oursDefault)} jobs/s is ${ratio(share)} of its best ${integer(graphileBest)}; with WORKER_PREFETCH=500 ${integer(figures[`${ourName}Best`]!)} jobs/s, ${ratio(figures[`${ourName}Best`]! / graphileBest)}; with a larger buffer, ${integer(bestBuffered)} jobs/s, ${ratio(bestBuffered / graphileBest)}).`,
      `Target (issue #21): JOB_RETENTION=0 ≥ 1.25x graphile-worker's best: ${verdict(Math.max(oursDeleting, oursDefaultDeleting) / graphileBest >= 1.25)} (defaults ${integer(oursDefaultDeleting)} jobs/s, ${ratio(oursDefaultDeleting / graphileBest)}; WORKER_PREFETCH=500 ${integer(oursDeleting)} jobs/s, ${ratio(oursDeleting / graphileBest)}).`
    )
  }
  for (const peer of ["BullMQ 6.7.6, Redis AOF", "BullMQ 6.7.6, PostgreSQL"]) {
    const theirs = figures[`${peer}Best`]
    if (theirs === undefined) continue
    targets.push(
      `Target (issue #21): defaults ahead of ${peer}: ${verdict(oursDefault > theirs)} (${integer(oursDefault)} against ${integer(theirs)} jobs/s, ${ratio(oursDefault / theirs)}).`
    )
  }
  const cpuAt = (system: string, c: number) => summary(system, c, postgresCpu)?.median ?? Number.NaN
  if (graphileBest !== undefined) {
    for (const c of targetLevels.filter((c) => levels.includes(c))) {
      const theirs = cpuAt(graphile, c)
      const deleting = Math.min(cpuAt(ourDeletingName, c), cpuAt(ourDefaultDeletingName, c))
      const kept = Math.min(cpuAt(ourName, c), cpuAt(ourDefaultName, c))
      targets.push(
        `Target (issue #21), Postgres CPU per job at concurrency ${c}: deleting ≤ graphile-worker's ${verdict(deleting <= theirs)} (${decimal(deleting, 1)} against ${decimal(theirs, 1)} µs/job, ${ratio(deleting / theirs)}); rows kept ≤ 1.3x ${verdict(kept <= 1.3 * theirs)} (${decimal(kept, 1)} µs/job, ${ratio(kept / theirs)}); the lower of our two settings each time.`
      )
    }
  }
  const markdown = [
    `Our worker runs as a real process: \`bun src/worker.ts\` with the JavaScriptCore setting its npm script and the image set (BUN_JSC_thresholdForFTLOptimizeAfterWarmUp, docs/tradeoffs.md), WORKER_METRICS_PORT=0, WORKER_CONCURRENCY as shown, WORKER_PREFETCH 500 (the batch the peers fetch), the default pool of 10 connections, a no-op kind (\`drain_noop\`, bench/BenchKinds.ts); it starts behind a table lock the harness holds, so process start-up is not timed, and its clock runs, like the peers', from its first handler call (which the kind writes to a file) to the last completion's \`finished_at\`. The JOB_RETENTION=0 column is the same worker deleting each succeeded job in its completion statement instead of keeping it with its result, which is what graphile-worker always does; its end is the first 2 ms poll that finds the table empty. The peers run in-process under Node 22 (bench/peers/*.mjs); their time runs from the first handler call to the moment every completion is visible in their table.`,
    "",
    `"ours, defaults" is the same worker with WORKER_PREFETCH left to its default (${targetLevels.join(" and ")} only), "ours (1 process)" sets it to 500.`,
    "",
    ...peers.map(
      (p) =>
        `- ${p.name}: ${p.settings}${p.levels === undefined ? "" : ` (concurrency ${p.levels.join(" and ")} only)`}`
    ),
    "",
    `**CPU per job** (µs): the Postgres backends serving the benchmark's database, \`utime + stime\` from /proc/<pid>/stat (10 ms ticks: a tick is ${decimal(10_000 / backlog, 1)} µs/job at this backlog, per backend), read right before the drain starts (ours: once every worker waits at the start gate; a peer: after its backlog is in and analyzed, before its worker starts) and once the harness sees the drain done; the harness's own polling connections (\`application_name\` \`bench-probe\`) are left out, a backend opened during the drain counts from its start (connection set-up included). Postgres's shared background processes (WAL writer, checkpointer) are not counted. For BullMQ on Redis, redis-server's own CPU over the same window (all its threads; the machine's server also serves other users of this shared machine during the run). The worker process's CPU over the same window, all its threads (a JIT compiler's and a garbage collector's included, which do much of their work in a drain this short): ours \`bun src/worker.ts\`, a peer's Node process running its worker (and, idle during the drain, its producer).`,
    "",
    `Backlog: ${integer(backlog)} no-op jobs per run${context.quick ? " (quick mode: 3,000 instead of 20,000, concurrency 1, 8, 32 only)" : ""}, inserted in one statement and then \`ANALYZE\`d, for every system alike. ${context.runs} runs per cell: median (min – max). Ratios are paired: run i of ours divided by run i of the peer, taken one after the other at the same concurrency; the median and range of those ratios. One row per system and level.`,
    "",
    table(headers, rows),
    "",
    "Our worker with two processes on the same backlog (total concurrency = 2 × per process):",
    "",
    table(["processes × concurrency", "jobs/s"], twoProcesses),
    "",
    "One process with a larger claim buffer than the peers' fetch size (WORKER_PREFETCH; the claims are larger and fewer, so the cycle's fixed costs are spread over more jobs):",
    "",
    table(["WORKER_PREFETCH", "concurrency 8, jobs/s", "concurrency 32, jobs/s"], bufferRows),
    "",
    ...targets,
    ...(failures.length === 0
      ? []
      : ["", "Runs that failed (left out of the figures above):", "", ...failures.map((f) => `- ${f}`)])
  ].join("\n")
  return { title: "Drain throughput", markdown, chart, figures }
}
