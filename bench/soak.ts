/**
 * Sustained load, as users run it (issue #21): enqueue and work together for SOAK_MINUTES (default 20) at
 * SOAK_LOAD (default 0.7) of the measured drain capacity, on a private Postgres cluster with autovacuum on
 * (initdb's defaults; the shared test server has it off) and the `jobs` table settings of docs/runbook.md
 * (read from the runbook itself), with retention on: JOB_RETENTION (default 2 minutes, scaled down from the
 * runbook's days so that pruning reaches its steady state within the run) pruned by the elected maintainer.
 *
 * 1. Capacity: three drains of a backlog of `drain_noop` jobs by the soak's own worker processes and
 *    settings (bench/scenarios/OurDrain.ts, timed after a warm-up); the median is the capacity.
 * 2. Soak: SOAK_WORKERS (default 1) real worker processes (`bun src/worker.ts`, defaults: concurrency 10,
 *    prefetch 32), and a producer in this process calling the library's `Queue.enqueueMany` with SOAK_BATCH
 *    (default 50) jobs at a fixed rate (bench/FixedRate.ts, up to 4 calls in flight).
 * 3. Every SOAK_SAMPLE_SECONDS (10) the database is read (bench/SoakSampler.ts): completions, pickup
 *    latency, table and index sizes, dead tuples, autovacuums, backlog; plus the machine's load and CPU.
 *
 * Writes bench/soak.json (the samples) and bench/soak.svg (the plot), and prints the RESULTS.md figures
 * and the verdict against the targets. `--short` (or SOAK_SHORT=1) is a 3-minute check with a 30-second
 * retention and a smaller capacity drain, written under $TMPDIR/jobq-bench/ instead of bench/.
 *
 *   bun run bench/soak.ts [--short]
 */
import { writeFileSync } from "node:fs"
import { Effect } from "effect"
import { Queue } from "../src/queue/Queue.ts"
import * as BenchDatabase from "./BenchDatabase.ts"
import { benchDirectory, ensureInstalled, rootDirectory } from "./BenchDependencies.ts"
import { drainNoop, modulePath } from "./BenchKinds.ts"
import * as Chart from "./Chart.ts"
import * as FixedRate from "./FixedRate.ts"
import * as Machine from "./Machine.ts"
import { decimal, integer, table } from "./Markdown.ts"
import * as PrivateCluster from "./PrivateCluster.ts"
import * as ProcessCpu from "./ProcessCpu.ts"
import * as QueueClient from "./QueueClient.ts"
import * as Sampler from "./SoakSampler.ts"
import { percentile, summarize } from "./Stats.ts"
import * as OurDrain from "./scenarios/OurDrain.ts"
import * as WorkerProcess from "./WorkerProcess.ts"

const short = process.argv.includes("--short") || process.env.SOAK_SHORT === "1"
const minutes = Number(process.env.SOAK_MINUTES ?? (short ? 3 : 20))
const load = Number(process.env.SOAK_LOAD ?? 0.7)
const workerCount = Number(process.env.SOAK_WORKERS ?? 1)
const batch = Number(process.env.SOAK_BATCH ?? 50)
const sampleSeconds = Number(process.env.SOAK_SAMPLE_SECONDS ?? 10)
const retention = process.env.SOAK_RETENTION ?? (short ? "30 seconds" : "2 minutes")
const fixedRate = process.env.SOAK_RATE === undefined ? undefined : Number(process.env.SOAK_RATE)
const concurrency = 10 // WORKER_CONCURRENCY's default
const capacityBacklog = short ? 30_000 : 60_000
const capacityWarmUp = short ? 5_000 : 10_000
/** Seconds after a window closes before it is read: completions committing late still count in it. */
const lag = 2
/** The verdict's windows: the run in quarters (5 minutes each in a 20-minute run). */
const windowCount = 4

const outDirectory = short ? `${WorkerProcess.logDirectory}/` : benchDirectory
const jsonFile = `${outDirectory}${short ? "soak-short" : "soak"}.json`
const svgFile = `${outDirectory}${short ? "soak-short" : "soak"}.svg`
const log = (line: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`)

/** The `ALTER TABLE jobs SET (...)` block of docs/runbook.md's "Autovacuum settings for the queue table". */
const runbookSettings = async () => {
  const runbook = await Bun.file(`${rootDirectory}docs/runbook.md`).text()
  const found = /```sql\n(ALTER TABLE jobs SET \([\s\S]*?\);)\n```/.exec(runbook)?.[1]
  if (found === undefined) throw new Error("docs/runbook.md has no `ALTER TABLE jobs SET (...)` block")
  return found
}

const workerEnv = {
  JOBS_MODULE: modulePath,
  WORKER_CONCURRENCY: String(concurrency),
  // OurDrain sets the peers' 500 unless told otherwise: the soak runs the default, max(concurrency, 32)
  WORKER_PREFETCH: String(Math.max(concurrency, 32)),
  JOB_RETENTION: retention,
  ...(process.env.SOAK_PREFETCH === undefined ? {} : { WORKER_PREFETCH: process.env.SOAK_PREFETCH })
}

export interface Sample {
  /** Minutes from the soak's start to the end of the window. */
  readonly minute: number
  readonly from: number
  readonly to: number
  readonly completedPerSecond: number
  readonly enqueuedPerSecond: number
  readonly pickupP50Ms: number
  readonly pickupP99Ms: number
  readonly endToEndP50Ms: number
  readonly endToEndP99Ms: number
  readonly pickupHistogram: Sampler.Histogram
  readonly endToEndHistogram: Sampler.Histogram
  readonly totalMB: number
  readonly heapMB: number
  readonly indexesMB: number
  readonly indexesBytes: Readonly<Record<string, number>>
  readonly liveTuples: number
  readonly deadTuples: number
  readonly autovacuums: number
  readonly autoanalyzes: number
  readonly ready: number
  readonly running: number
  readonly loadAverage: number
  readonly cpuBusyPercent: number
  /** CPU seconds used since the soak started: the cluster's processes, the workers, this harness (the producer). */
  readonly postgresCpuSeconds: number
  readonly workerCpuSeconds: number
  readonly harnessCpuSeconds: number
}

const mb = (bytes: number) => bytes / 1024 ** 2

await ensureInstalled()
log(`private cluster: initdb + pg_ctl (autovacuum on, initdb defaults; autovacuum runs are logged)`)
const cluster = PrivateCluster.start({ log_autovacuum_min_duration: "0" })
const cleanUp = () => cluster.stop()
process.on("SIGINT", () => {
  cleanUp()
  process.exit(130)
})
let exitCode = 0
try {
  const db = await BenchDatabase.create("soak", "jobq", cluster.adminUrl)
  const machine = await Machine.describe(db.sql)
  const settings = await runbookSettings()
  await db.sql.unsafe(settings)
  const [{ reloptions }] = await db.sql`SELECT reloptions::text FROM pg_class WHERE oid = 'jobs'::regclass`
  log(`jobs table settings: ${reloptions}`)
  log(`server: ${machine.postgres}; ${JSON.stringify(machine.postgresSettings)}`)

  // 1. capacity
  let capacity = fixedRate === undefined ? Number.NaN : fixedRate / load
  const capacityRuns: Array<number> = []
  if (fixedRate === undefined) {
    for (let i = 0; i < 3; i++) {
      const run = await OurDrain.run(
        db,
        {
          backlog: capacityBacklog,
          warmUp: capacityWarmUp,
          concurrency,
          processes: workerCount,
          env: workerEnv
        },
        `soak-capacity-${i}`
      )
      capacityRuns.push(run.jobsPerSecond)
      log(`capacity drain ${i + 1}: ${integer(run.jobsPerSecond)} jobs/s`)
    }
    capacity = summarize(capacityRuns).median
  }
  await db.sql`TRUNCATE jobs`
  const rate = capacity * load
  log(`capacity ${integer(capacity)} jobs/s; soak at ${integer(rate)} jobs/s for ${minutes} min`)

  // 2. soak
  const workers = Array.from({ length: workerCount }, (_, i) =>
    WorkerProcess.spawn(db.url, `soak-worker-${i}`, workerEnv)
  )
  const client = QueueClient.make(db.url, 4)
  const samples: Array<Sample> = []
  const loadAtStart = await Sampler.loadAverage()
  try {
    const deadline = Date.now() + 30_000
    while (
      Number((await db.sql`SELECT count(*)::int AS n FROM workers WHERE id LIKE 'soak-worker-%'`)[0].n) <
      workerCount
    ) {
      if (Date.now() > deadline) throw new Error("the workers did not register within 30 s")
      for (const w of workers)
        if (w.process.exitCode !== null) throw new Error(`a worker exited; see ${w.logFile}`)
      await Bun.sleep(100)
    }
    const queue = await client.runPromise(
      Effect.gen(function* () {
        return yield* Queue
      })
    )
    const jobs = Array.from({ length: batch }, () => ({ kind: drainNoop.name, payload: {} }))
    let enqueued = 0
    const [{ at }] = await db.sql`SELECT extract(epoch FROM clock_timestamp())::float8 AS at`
    const t0 = Number(at)
    const producer = FixedRate.pace({
      perSecond: rate / batch,
      seconds: minutes * 60,
      maxInFlight: 4,
      call: async () => {
        await client.runPromise(queue.enqueueMany(jobs))
        enqueued += batch
        return true
      }
    })
    let producerDone = false
    const produced = producer.finally(() => {
      producerDone = true
    })
    const windows = Math.round((minutes * 60) / sampleSeconds)
    let lastEnqueued = 0
    let lastCpu = await Sampler.cpuTimes()
    const processCpu = () => ({
      postgres: ProcessCpu.treeSeconds(cluster.pid),
      workers: workers.reduce((sum, w) => sum + ProcessCpu.seconds(w.process.pid), 0),
      harness: (process.cpuUsage().user + process.cpuUsage().system) / 1e6
    })
    const cpuAtStart = processCpu()
    for (let k = 1; k <= windows; k++) {
      const closes = t0 + k * sampleSeconds
      // the enqueue count is the producer's, read when the window closes
      await Bun.sleep(Math.max(0, closes * 1000 - Date.now()))
      const enqueuedNow = enqueued
      const cpu = await Sampler.cpuTimes()
      const used = processCpu()
      const loadNow = await Sampler.loadAverage()
      await Bun.sleep(lag * 1000)
      for (const w of workers)
        if (w.process.exitCode !== null) throw new Error(`a worker exited; see ${w.logFile}`)
      const done = await Sampler.finished(db.sql, closes - sampleSeconds, closes)
      const state = await Sampler.table(db.sql)
      const sample: Sample = {
        minute: (k * sampleSeconds) / 60,
        from: closes - sampleSeconds,
        to: closes,
        completedPerSecond: done.count / sampleSeconds,
        enqueuedPerSecond: (enqueuedNow - lastEnqueued) / sampleSeconds,
        pickupP50Ms: done.pickupP50Ms,
        pickupP99Ms: done.pickupP99Ms,
        endToEndP50Ms: done.endToEndP50Ms,
        endToEndP99Ms: done.endToEndP99Ms,
        pickupHistogram: done.pickupHistogram,
        endToEndHistogram: done.endToEndHistogram,
        totalMB: mb(state.totalBytes),
        heapMB: mb(state.heapBytes),
        indexesMB: mb(state.indexBytes),
        indexesBytes: state.indexes,
        liveTuples: state.liveTuples,
        deadTuples: state.deadTuples,
        autovacuums: state.autovacuums,
        autoanalyzes: state.autoanalyzes,
        ready: state.ready,
        running: state.running,
        loadAverage: loadNow,
        cpuBusyPercent: (100 * (cpu.busy - lastCpu.busy)) / Math.max(1, cpu.total - lastCpu.total),
        postgresCpuSeconds: used.postgres - cpuAtStart.postgres,
        workerCpuSeconds: used.workers - cpuAtStart.workers,
        harnessCpuSeconds: used.harness - cpuAtStart.harness
      }
      lastEnqueued = enqueuedNow
      lastCpu = cpu
      samples.push(sample)
      log(
        `${decimal(sample.minute, 2)} min: ${integer(sample.completedPerSecond)} done/s, ${integer(sample.enqueuedPerSecond)} enq/s, pickup p50/p99 ${decimal(sample.pickupP50Ms)}/${decimal(sample.pickupP99Ms)} ms, e2e p99 ${decimal(sample.endToEndP99Ms)} ms, ${decimal(sample.totalMB, 1)} MB (heap ${decimal(sample.heapMB, 1)}), dead ${integer(sample.deadTuples)}, autovacuums ${sample.autovacuums}, ready ${integer(sample.ready)}, load ${sample.loadAverage}, cpu ${decimal(sample.cpuBusyPercent, 0)}%`
      )
      if (producerDone && k < windows) log("the producer finished early")
    }
    const result = await produced
    log(
      `producer: ${integer(result.ok * batch)} jobs in ${integer(result.ok)} calls, ${result.errors} errors, ${result.late} late calls, call p99 ${decimal(result.latencyMs.p99)} ms`
    )
    const loadAtEnd = await Sampler.loadAverage()
    const autovacuumLog = await Bun.file(cluster.logFile)
      .text()
      .catch(() => "")
    writeFileSync(WorkerProcess.logPath("soak-server.log"), autovacuumLog)
    const report = verdict({
      samples,
      capacity,
      capacityRuns,
      rate,
      producer: result,
      machine,
      settings,
      loadAtStart,
      loadAtEnd,
      autovacuumLog
    })
    writeFileSync(
      jsonFile,
      `${JSON.stringify({ minutes, load, workers: workerCount, batch, retention, capacity, capacityRuns, rate, machine, tableSettings: settings, producer: { ...result, jobs: result.ok * batch }, samples }, null, 1)}\n`
    )
    // formatted as the repository's linter wants it (bench/soak.json is committed)
    if (!short) Bun.spawnSync([`${rootDirectory}node_modules/.bin/biome`, "format", "--write", jsonFile])
    await Chart.renderWith(
      "soak-chart.mjs",
      {
        title: `Soak: ${minutes} min at ${Math.round(load * 100)}% of drain capacity (${integer(rate)} jobs/s), autovacuum on`,
        samples: samples.map(({ pickupHistogram, endToEndHistogram, indexesBytes, ...rest }) => rest)
      },
      svgFile
    )
    writeFileSync(WorkerProcess.logPath("soak-section.md"), report)
    console.log(`\n${report}\n`)
    log(`wrote ${jsonFile}, ${svgFile} and ${WorkerProcess.logPath("soak-section.md")}`)
  } finally {
    await client.dispose()
    await Promise.all(workers.map((w) => w.stop()))
    await db.sql.close()
  }
} catch (error) {
  console.error(error)
  exitCode = 1
} finally {
  cleanUp()
}
process.exit(exitCode)

function verdict(input: {
  readonly samples: ReadonlyArray<Sample>
  readonly capacity: number
  readonly capacityRuns: ReadonlyArray<number>
  readonly rate: number
  readonly producer: FixedRate.FixedRateResult
  readonly machine: Machine.Machine
  readonly settings: string
  readonly loadAtStart: number
  readonly loadAtEnd: number
  readonly autovacuumLog: string
}): string {
  const { samples } = input
  const edge = (i: number) => Math.round((i * samples.length) / windowCount)
  const windows = Array.from({ length: windowCount }, (_, i) => samples.slice(edge(i), edge(i + 1))).filter(
    (w) => w.length > 0
  )
  const sum = (values: ReadonlyArray<number>) => values.reduce((s, v) => s + v, 0)
  /** CPU microseconds per completed job in a window, from the cumulative readings around it. */
  const cpuPerJob = (w: ReadonlyArray<Sample>) => {
    const before = samples[samples.indexOf(w[0]!) - 1]
    const after = w[w.length - 1]!
    const jobs = sum(w.map((s) => s.completedPerSecond * sampleSeconds))
    const per = (pick: (s: Sample) => number) =>
      (1e6 * (pick(after) - (before === undefined ? 0 : pick(before)))) / jobs
    return {
      postgresUs: per((s) => s.postgresCpuSeconds),
      workerUs: per((s) => s.workerCpuSeconds),
      harnessUs: per((s) => s.harnessCpuSeconds)
    }
  }
  const mean = (values: ReadonlyArray<number>) => sum(values) / Math.max(1, values.length)
  const rows = windows.map((w) => {
    const pickup = Sampler.merge(w.map((s) => s.pickupHistogram))
    const endToEnd = Sampler.merge(w.map((s) => s.endToEndHistogram))
    const last = w[w.length - 1]!
    return {
      label: `${decimal(w[0]!.minute - sampleSeconds / 60, 1)}–${decimal(last.minute, 1)}`,
      completed: mean(w.map((s) => s.completedPerSecond)),
      enqueued: mean(w.map((s) => s.enqueuedPerSecond)),
      pickupP50: Sampler.percentileOf(pickup, 50),
      pickupP99: Sampler.percentileOf(pickup, 99),
      worstWindowP99: Math.max(...w.map((s) => s.pickupP99Ms)),
      endToEndP99: Sampler.percentileOf(endToEnd, 99),
      sizeMax: Math.max(...w.map((s) => s.totalMB)),
      sizeEnd: last.totalMB,
      heapEnd: last.heapMB,
      indexesEnd: last.indexesMB,
      deadMax: Math.max(...w.map((s) => s.deadTuples)),
      readyMax: Math.max(...w.map((s) => s.ready)),
      autovacuums: last.autovacuums - (samples[samples.indexOf(w[0]!) - 1]?.autovacuums ?? 0),
      load: mean(w.map((s) => s.loadAverage)),
      cpu: mean(w.map((s) => s.cpuBusyPercent)),
      ...cpuPerJob(w)
    }
  })
  const first = rows[0]!
  const second = rows[1] ?? first
  const last = rows[rows.length - 1]!
  const throughputHeld = last.completed >= 0.9 * first.completed
  const p99Held = last.pickupP99 <= first.pickupP99 / 0.9
  const plateau = last.sizeMax <= 1.1 * second.sizeMax
  const backlogAtEnd = samples[samples.length - 1]!.ready
  const keptUp = last.completed >= 0.95 * last.enqueued && backlogAtEnd <= 5 * input.rate
  const indexNames = Object.keys(samples[samples.length - 1]!.indexesBytes).sort()
  const indexRow = (s: Sample) => indexNames.map((n) => decimal(mb(s.indexesBytes[n] ?? 0), 1))
  const ends = windows.map((w) => w[w.length - 1]!)
  const vacuums = [
    ...input.autovacuumLog.matchAll(/automatic vacuum of table "[^"]*\.jobs"[\s\S]*?elapsed: ([\d.]+) s/g)
  ].map((m) => Number(m[1]))
  const vacuumSorted = [...vacuums].sort((a, b) => a - b)
  const allLoads = samples.map((s) => s.loadAverage)
  return [
    `**Setup.** ${input.machine.cores} cores (${input.machine.cpuModel}), ${input.machine.memoryGiB} GiB, shared with other helpers' test runs; Bun ${input.machine.bun}; ${input.machine.postgres.split(" on ")[0]} in a private cluster started by the benchmark (initdb defaults: autovacuum on, shared_buffers ${input.machine.postgresSettings.shared_buffers}, synchronous_commit ${input.machine.postgresSettings.synchronous_commit}, fsync ${input.machine.postgresSettings.fsync}; autovacuum runs logged). The jobs table got docs/runbook.md's settings, read from the runbook: \`${input.settings.replace(/\s*--[^\n]*/g, "").replace(/\s+/g, " ")}\`. ${workerCount} worker process${workerCount > 1 ? "es" : ""} (\`bun src/worker.ts\`, concurrency ${concurrency}, prefetch ${workerEnv.WORKER_PREFETCH}: the defaults), \`JOB_RETENTION=${retention}\` (pruned by the elected maintainer every minute), no-op jobs (\`drain_noop\`).`,
    "",
    `**Method.** Capacity: ${input.capacityRuns.length > 0 ? `the median of ${input.capacityRuns.length} drains of ${integer(capacityBacklog)} queued jobs by the same worker setup, timed after the first ${integer(capacityWarmUp)} completions (${input.capacityRuns.map((r) => integer(r)).join(", ")} jobs/s)` : "given (SOAK_RATE)"}: **${integer(input.capacity)} jobs/s**. Load: ${Math.round(load * 100)}% of it, **${integer(input.rate)} jobs/s**, offered by one producer in the harness process calling the library's \`Queue.enqueueMany\` with ${batch} jobs per call at a fixed rate (up to 4 calls in flight), for ${minutes} minutes. Every ${sampleSeconds} s the harness read from the database the jobs that finished in the window (by \`finished_at\`, ${lag} s after it closed): completions/s; pickup = \`started_at\` (the claim) − \`created_at\`/\`run_at\` (the enqueue); end to end = \`finished_at\` − the same; and the table's size (\`pg_total_relation_size\`, \`pg_relation_size\` of the heap and of each index), dead tuples and autovacuum count (\`pg_stat_user_tables\`). Percentiles per window below merge the samples' log histograms (buckets 6% wide).`,
    "",
    `Producer: ${integer(input.producer.ok * batch)} jobs in ${integer(input.producer.ok)} calls, ${input.producer.errors} errors, ${input.producer.late} calls sent late (> 10 ms), call latency p50 / p99 ${decimal(input.producer.latencyMs.p50)} / ${decimal(input.producer.latencyMs.p99)} ms. Load average (1 min) during the soak: ${decimal(Math.min(...allLoads))} – ${decimal(Math.max(...allLoads))}, median ${decimal(
      percentile(
        [...allLoads].sort((a, b) => a - b),
        50
      )
    )} (at start ${decimal(input.loadAtStart)}, at end ${decimal(input.loadAtEnd)}).`,
    "",
    table(
      [
        "minutes",
        "completed/s",
        "enqueued/s",
        "pickup p50, ms",
        "pickup p99, ms",
        "worst 10 s p99, ms",
        "end-to-end p99, ms",
        "table + indexes, MB (max / end)",
        "heap / indexes at end, MB",
        "dead tuples, max",
        "ready jobs, max",
        "autovacuums",
        "load avg",
        "machine CPU busy",
        "CPU µs/job: Postgres / worker / producer"
      ],
      rows.map((r) => [
        r.label,
        integer(r.completed),
        integer(r.enqueued),
        decimal(r.pickupP50),
        decimal(r.pickupP99),
        decimal(r.worstWindowP99),
        decimal(r.endToEndP99),
        `${decimal(r.sizeMax, 1)} / ${decimal(r.sizeEnd, 1)}`,
        `${decimal(r.heapEnd, 1)} / ${decimal(r.indexesEnd, 1)}`,
        integer(r.deadMax),
        integer(r.readyMax),
        String(r.autovacuums),
        decimal(r.load),
        `${decimal(r.cpu, 0)}%`,
        `${decimal(r.postgresUs, 1)} / ${decimal(r.workerUs, 1)} / ${decimal(r.harnessUs, 1)}`
      ])
    ),
    "",
    "Index sizes (MB) at the end of each window:",
    "",
    table(
      ["minute", ...indexNames],
      ends.map((s) => [decimal(s.minute, 1), ...indexRow(s)])
    ),
    "",
    `Autovacuum of \`jobs\` (server log): ${vacuums.length} runs, elapsed median ${decimal(percentile(vacuumSorted, 50))} s, max ${decimal(vacuumSorted[vacuumSorted.length - 1] ?? Number.NaN)} s.`,
    "",
    "**Verdict.**",
    `- Throughput held (last window ≥ 90% of the first): **${throughputHeld ? "met" : "missed"}**, ${integer(last.completed)} against ${integer(first.completed)} jobs/s (${decimal((100 * last.completed) / first.completed, 1)}%).`,
    `- Pickup p99 held (last window's p99 within the same 10%: at most the first's ÷ 0.9): **${p99Held ? "met" : "missed"}**, ${decimal(last.pickupP99)} against ${decimal(first.pickupP99)} ms.`,
    `- Context, not a target: the workers ${keptUp ? "kept up" : "did **not** keep up"} with the offered load (last window: ${integer(last.completed)} completed against ${integer(last.enqueued)} enqueued jobs/s; ${integer(backlogAtEnd)} ready jobs at the end, ${decimal(backlogAtEnd / input.rate, 1)} s of work).`,
    `- Table and index size plateau (last window's largest at most 10% above the second window's): **${plateau ? "met" : "missed"}**, ${decimal(last.sizeMax, 1)} against ${decimal(second.sizeMax, 1)} MB.`
  ].join("\n")
}
