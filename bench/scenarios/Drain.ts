/**
 * Scenario 1 and 3: drain throughput of no-op jobs from a backlog, at each concurrency, for our worker
 * (one process, and two), and for the peers at the same concurrency in the same loop: for every run index
 * each system drains the same backlog once, in turn, so each ratio compares two runs taken side by side.
 */
import * as BenchDatabase from "../BenchDatabase.ts"
import { integer, medianRange, ratio, table } from "../Markdown.ts"
import type { ChartPoint, Context, Section } from "../Scenario.ts"
import { type Summary, summarize } from "../Stats.ts"
import * as OurDrain from "./OurDrain.ts"
import * as PeerDrain from "./PeerDrain.ts"

export const concurrencies = (quick: boolean) => (quick ? [1, 8, 32] : [1, 2, 4, 8, 16, 32])
export const backlogSize = (quick: boolean) => (quick ? 3_000 : 20_000)

interface System {
  readonly name: string
  readonly drain: (concurrency: number, backlog: number, label: string) => Promise<number>
}

const ourName = "ours (1 process)"
const ourDeletingName = "ours, JOB_RETENTION=0"

const ours = (db: BenchDatabase.BenchDatabase, deleteSucceeded: boolean): System => ({
  name: deleteSucceeded ? ourDeletingName : ourName,
  drain: async (concurrency, backlog, label) =>
    (
      await OurDrain.run(
        db,
        { backlog, concurrency, processes: 1, deleteSucceeded },
        `${label}${deleteSucceeded ? "-delete" : ""}`
      )
    ).jobsPerSecond
})

export const run = async (context: Context): Promise<Section> => {
  const backlog = backlogSize(context.quick)
  const levels = concurrencies(context.quick)
  const results = new Map<string, Map<number, Array<number>>>()
  const record = (system: string, concurrency: number, value: number) => {
    const bySystem = results.get(system) ?? new Map<number, Array<number>>()
    results.set(system, bySystem)
    bySystem.set(concurrency, [...(bySystem.get(concurrency) ?? []), value])
  }
  const peerNames = context.peersAvailable ? PeerDrain.peers.map((p) => p.name) : []
  const buffers = new Map<string, Array<number>>()
  const largerBuffers = context.quick ? [2000] : [1000, 2000]

  await BenchDatabase.using("drain", async (db) => {
    const systems: Array<System> = [ours(db, false), ours(db, true)]
    if (context.peersAvailable) {
      for (const peer of PeerDrain.peers) {
        systems.push({
          name: peer.name,
          drain: (concurrency, size) => PeerDrain.run(peer, db, { concurrency, backlog: size })
        })
      }
    }
    for (const concurrency of levels) {
      for (let i = 0; i < context.runs; i++) {
        for (const system of systems) {
          const value = await system.drain(concurrency, backlog, `drain-c${concurrency}-${i}`)
          record(system.name, concurrency, value)
          context.log(`drain ${system.name} c=${concurrency} run ${i + 1}: ${integer(value)} jobs/s`)
        }
      }
    }
    // two worker processes, each with half the slots of the largest level and with the full level each
    for (const each of [16, 32]) {
      for (let i = 0; i < context.runs; i++) {
        const value = (
          await OurDrain.run(db, { backlog, concurrency: each, processes: 2 }, `drain-2p-${each}`)
        ).jobsPerSecond
        record("ours (2 processes)", each * 2, value)
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

  const summary = (system: string, concurrency: number): Summary | undefined => {
    const values = results.get(system)?.get(concurrency)
    return values === undefined ? undefined : summarize(values)
  }
  /** Median over runs of (ours / peer) for the runs taken side by side. */
  const pairedRatio = (peer: string, concurrency: number, system = ourName) => {
    const mine = results.get(system)?.get(concurrency) ?? []
    const theirs = results.get(peer)?.get(concurrency) ?? []
    const ratios = theirs.map((t, i) => (mine[i] ?? Number.NaN) / t)
    return ratios.length === 0 ? undefined : summarize(ratios)
  }

  const ratioCell = (r: Summary | undefined) =>
    r === undefined ? "n/a" : `${ratio(r.median)} (${ratio(r.min)} – ${ratio(r.max)})`
  const rows = levels.map((c) => {
    const cells = [String(c), medianRange(summary(ourName, c)!), medianRange(summary(ourDeletingName, c)!)]
    for (const peer of peerNames) {
      const s = summary(peer, c)
      cells.push(s === undefined ? "n/a" : medianRange(s))
      cells.push(ratioCell(pairedRatio(peer, c)), ratioCell(pairedRatio(peer, c, ourDeletingName)))
    }
    return cells
  })
  const headers = ["concurrency", "ours, jobs/s", "ours, JOB_RETENTION=0, jobs/s"]
  for (const peer of peerNames)
    headers.push(`${peer}, jobs/s`, `ours ÷ ${peer}`, `ours (retention 0) ÷ ${peer}`)
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
  const figures: Record<string, number> = { oursBest: best(ourName), oursDeletingBest: best(ourDeletingName) }
  for (const peer of peerNames) figures[`${peer}Best`] = best(peer)

  const targets: Array<string> = []
  const graphileBest = figures["graphile-worker 0.18.0Best"]
  const bossBest = figures["pg-boss 12.38.0Best"]
  const deleting = figures.oursDeletingBest!
  if (graphileBest !== undefined) {
    const share = figures.oursBest! / graphileBest
    targets.push(
      `Target ≥ 1.5x graphile-worker's best level: **${share >= 1.5 ? "met" : "missed"}** (our best ${integer(figures.oursBest!)} jobs/s is ${ratio(share)} of its best ${integer(graphileBest)}; with JOB_RETENTION=0, which like graphile-worker deletes a job when it succeeds, ${integer(deleting)} jobs/s, ${ratio(deleting / graphileBest)}; with a larger buffer, ${integer(bestBuffered)} jobs/s, ${ratio(bestBuffered / graphileBest)}).`
    )
  }
  if (bossBest !== undefined) {
    const share = figures.oursBest! / bossBest
    targets.push(
      `Target ≥ 2x pg-boss's best level: **${share >= 2 ? "met" : "missed"}** (${ratio(share)} of its best ${integer(bossBest)}; with JOB_RETENTION=0 ${ratio(deleting / bossBest)}).`
    )
  }
  const markdown = [
    `Our worker runs as a real process: \`bun src/worker.ts\` with WORKER_METRICS_PORT=0, WORKER_CONCURRENCY as shown, WORKER_PREFETCH 500 (the batch the peers fetch), the default pool of 10 connections, a no-op kind (\`drain_noop\`, bench/BenchKinds.ts); it starts behind a table lock the harness holds, so process start-up is not timed, and its clock runs, like the peers', from its first handler call (which the kind writes to a file) to the last completion's \`finished_at\`. The JOB_RETENTION=0 column is the same worker deleting each succeeded job in its completion statement instead of keeping it with its result, which is what graphile-worker always does; its end is the first 2 ms poll that finds the table empty. The peers run in-process under Node 22 (bench/peers/*.mjs); their time runs from the first handler call to the moment every completion is visible in their table.`,
    "",
    ...PeerDrain.peers.map((p) => `- ${p.name}: ${p.settings}`),
    "",
    `Backlog: ${integer(backlog)} no-op jobs per run${context.quick ? " (quick mode: 3,000 instead of 20,000, concurrency 1, 8, 32 only)" : ""}, inserted in one statement and then \`ANALYZE\`d, for every system alike. ${context.runs} runs per cell: median (min – max). Ratios are paired: run i of ours divided by run i of the peer, taken one after the other at the same concurrency; the median and range of those ratios.`,
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
    ...targets
  ].join("\n")
  return { title: "Drain throughput", markdown, chart, figures }
}
