/**
 * The event stream's budget (issue #19: a drain with one `GET /events` client following everything runs at
 * >= 90% of the drain with none) and what the event batches of migrations/0012 cost those who do not follow.
 *
 * 1. **The budget.** Our drain (OurDrain: one worker process, no-op jobs, WORKER_PREFETCH 500) at
 *    concurrency 8 and 32, in pairs whose order alternates: with an API process (`bun src/api.ts`) and a
 *    client reading `GET /events` (no filter) for the whole drain, and without. Besides jobs/s, CPU per
 *    drained job from /proc: the worker process, its Postgres sessions, the API process and its sessions,
 *    and the harness process (which runs the follower client), each from the start gate to the last
 *    completion (the harness from the gate to the follower's last event).
 * 2. **What nobody following pays.** The CPU of one Postgres backend running the worker's claim and
 *    completion (`JobRepo`, prepared as the worker runs them) in a loop over a backlog, per job, at claim
 *    sizes 10, 32 (the default buffer) and 500: with the statements' event batches (as shipped) and
 *    without them (`EventBatches` off, the statements as before 0012), the events gate
 *    closed, rounds alternating; and the same with the gate held (what following costs the database: one
 *    batch row per statement against 0008's row per job).
 */
import { readFileSync } from "node:fs"
import { Effect, Layer, ManagedRuntime } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../../src/db/Database.ts"
import { EventBatches } from "../../src/queue/eventBatch.ts"
import { JobRepo } from "../../src/queue/JobRepo.ts"
import * as ApiProcess from "../ApiProcess.ts"
import * as Backlog from "../Backlog.ts"
import * as BenchDatabase from "../BenchDatabase.ts"
import * as EventFollower from "../EventFollower.ts"
import { freePort } from "../FreePort.ts"
import { decimal, integer, medianRange, ratio, table } from "../Markdown.ts"
import type { Context, Section } from "../Scenario.ts"
import { type Summary, summarize } from "../Stats.ts"
import * as OurDrain from "./OurDrain.ts"

/** CPU time of a process so far, in microseconds (user + system, 10 ms ticks). */
const cpuOf = (pid: number) => {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
    return (Number(fields[11]) + Number(fields[12])) * 10_000
  } catch {
    return 0
  }
}
const harnessCpu = () => {
  const usage = process.cpuUsage()
  return usage.user + usage.system
}

/** The sessions of the run's database by program (application_name), with their CPU so far. */
const sessionsCpu = async (db: BenchDatabase.BenchDatabase) => {
  const rows = await db.sql`
    SELECT pid, application_name AS name FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()`
  const byProgram = new Map<string, Map<number, number>>()
  for (const row of rows as Array<{ pid: number; name: string }>) {
    const program = row.name.startsWith("jobq-api") ? "api" : row.name.startsWith("jobq") ? "worker" : "other"
    const pids = byProgram.get(program) ?? new Map<number, number>()
    pids.set(row.pid, cpuOf(row.pid))
    byProgram.set(program, pids)
  }
  return byProgram
}
/** CPU the sessions of `program` used between two samples (sessions opened meanwhile from 0). */
const sessionsUsed = (
  before: Map<string, Map<number, number>>,
  after: Map<string, Map<number, number>>,
  program: string
) => {
  let total = 0
  for (const [pid, cpu] of after.get(program) ?? []) total += cpu - (before.get(program)?.get(pid) ?? 0)
  return total
}

interface BudgetRun {
  readonly jobsPerSecond: number
  /** us of CPU per drained job */
  readonly worker: number
  readonly workerDb: number
  readonly api: number
  readonly apiDb: number
  readonly harness: number
  readonly eventsPerJob: number
  readonly resets: number
}

const budgetRun = async (
  db: BenchDatabase.BenchDatabase,
  backlog: number,
  concurrency: number,
  following: boolean,
  label: string
): Promise<BudgetRun> => {
  const api = following ? await ApiProcess.start(db.url, freePort()) : undefined
  try {
    const client = api === undefined ? undefined : await EventFollower.follow(api.baseUrl)
    let before: { worker: number; api: number; sessions: Map<string, Map<number, number>>; harness: number }
    let after: typeof before
    const sample = async (workers: ReadonlyArray<{ process: Bun.Subprocess }>) => ({
      worker: workers.reduce((sum, w) => sum + cpuOf(w.process.pid), 0),
      api: api === undefined ? 0 : cpuOf(api.process.pid),
      sessions: await sessionsCpu(db),
      harness: harnessCpu()
    })
    const run = await OurDrain.run(
      db,
      {
        backlog,
        concurrency,
        processes: 1,
        started: async (workers) => {
          before = await sample(workers)
        },
        drained: async (workers) => {
          // the follower takes every event (enqueued, started, succeeded) before the API is sampled
          const deadline = Date.now() + 30_000
          while (client !== undefined && client.received() < 3 * backlog && Date.now() < deadline)
            await Bun.sleep(20)
          after = await sample(workers)
        }
      },
      label
    )
    const seen = client === undefined ? undefined : await client.stop()
    const per = (us: number) => us / backlog
    return {
      jobsPerSecond: run.jobsPerSecond,
      worker: per(after!.worker - before!.worker),
      workerDb: per(sessionsUsed(before!.sessions, after!.sessions, "worker")),
      api: per(after!.api - before!.api),
      apiDb: per(sessionsUsed(before!.sessions, after!.sessions, "api")),
      harness: per(after!.harness - before!.harness),
      eventsPerJob: seen === undefined ? 0 : seen.events / backlog,
      resets: seen?.resets ?? 0
    }
  } finally {
    await api?.stop()
  }
}

type Variant = "batches" | "row triggers"

/** us of one backend's CPU per job of claim + complete at `claimSize`, over `jobs` ready jobs. */
const statementCpu = async (
  url: string,
  sql: BenchDatabase.BenchDatabase["sql"],
  variant: Variant,
  gate: boolean,
  claimSize: number,
  jobs: number
) => {
  await Backlog.reset(sql)
  await sql`TRUNCATE event_log`
  await Backlog.fill(sql, jobs)
  await Backlog.analyze(sql)
  const holder = gate ? await sql.reserve() : undefined
  if (holder !== undefined) await holder`SELECT pg_advisory_lock(1785684594, 2)`
  const runtime = ManagedRuntime.make(
    JobRepo.layer.pipe(
      Layer.provide(Layer.succeed(EventBatches, variant === "batches")),
      Layer.provideMerge(Database.layerUrl(url, { maxConnections: 1, applicationName: "jobq-bench-events" }))
    )
  )
  try {
    return await runtime.runPromise(
      Effect.gen(function* () {
        const sqlClient = yield* SqlClient.SqlClient
        const repo = yield* JobRepo
        const [row] = yield* sqlClient<{ pid: number }>`SELECT pg_backend_pid() AS pid`
        const pid = row!.pid
        const start = cpuOf(pid)
        let done = 0
        for (;;) {
          const claimed = yield* repo.claim("bench", claimSize, 60_000)
          if (claimed.length === 0) break
          yield* repo.complete(
            "bench",
            claimed.map((job) => ({ id: job.id, result: null }))
          )
          done += claimed.length
        }
        return (cpuOf(pid) - start) / done
      })
    )
  } finally {
    await runtime.dispose()
    if (holder !== undefined) {
      await holder`SELECT pg_advisory_unlock(1785684594, 2)`
      holder.release()
    }
  }
}

const loadAverage = async () => (await Bun.file("/proc/loadavg").text()).split(" ").slice(0, 3).join(" ")

const us = (s: Summary) => medianRange(s, (n) => decimal(n, 1))

export const run = async (context: Context): Promise<Section> => {
  const backlog = context.quick ? 5_000 : 20_000
  const pairs = context.quick ? 3 : 5
  const levels = [8, 32]
  const claimSizes = [10, 32, 500]
  // enough claims for the 10 ms CPU ticks to resolve a few percent, few enough to finish on a loaded machine
  const statementJobs = (claimSize: number) => Math.min(claimSize * (context.quick ? 300 : 600), 20_000)
  const statementRounds = context.quick ? 3 : 5
  const loadBefore = await loadAverage()

  const budget = new Map<number, { followed: Array<BudgetRun>; alone: Array<BudgetRun> }>()
  const cpu = new Map<string, Array<number>>()
  await BenchDatabase.using("events", async (db) => {
    for (const concurrency of levels) {
      const runs = { followed: [] as Array<BudgetRun>, alone: [] as Array<BudgetRun> }
      for (let i = 0; i < pairs; i++) {
        for (const following of i % 2 === 0 ? [true, false] : [false, true]) {
          const r = await budgetRun(
            db,
            backlog,
            concurrency,
            following,
            `events-${following ? "followed" : "alone"}-c${concurrency}-${i}`
          )
          ;(following ? runs.followed : runs.alone).push(r)
          context.log(
            `events c=${concurrency} ${following ? "followed" : "alone"}: ${integer(r.jobsPerSecond)} jobs/s; us/job worker ${decimal(r.worker, 1)} + db ${decimal(r.workerDb, 1)}, api ${decimal(r.api, 1)} + db ${decimal(r.apiDb, 1)}, harness ${decimal(r.harness, 1)}; ${decimal(r.eventsPerJob)} events/job, ${r.resets} resets`
          )
        }
      }
      budget.set(concurrency, runs)
    }
    const variants: ReadonlyArray<readonly [Variant, boolean]> = [
      ["row triggers", false],
      ["batches", false],
      ["row triggers", true],
      ["batches", true]
    ]
    for (const claimSize of claimSizes) {
      for (let round = 0; round < statementRounds; round++) {
        for (const [variant, gate] of round % 2 === 0 ? variants : [...variants].reverse()) {
          const value = await statementCpu(db.url, db.sql, variant, gate, claimSize, statementJobs(claimSize))
          const key = `${claimSize}/${variant}/${gate}`
          cpu.set(key, [...(cpu.get(key) ?? []), value])
        }
      }
      context.log(
        `events statements, claims of ${claimSize}: ${variants.map(([v, g]) => `${v}${g ? " (gate held)" : ""} ${decimal(summarize(cpu.get(`${claimSize}/${v}/${g}`)!).median, 1)}`).join(", ")} us/job`
      )
    }
  })
  const loadAfter = await loadAverage()

  const ratios = new Map<number, Summary>()
  const budgetRows = levels.map((concurrency) => {
    const { followed, alone } = budget.get(concurrency)!
    const paired = summarize(followed.map((f, i) => f.jobsPerSecond / alone[i]!.jobsPerSecond))
    ratios.set(concurrency, paired)
    const pick = (runs: ReadonlyArray<BudgetRun>, f: (r: BudgetRun) => number) => summarize(runs.map(f))
    return [
      String(concurrency),
      medianRange(pick(alone, (r) => r.jobsPerSecond)),
      medianRange(pick(followed, (r) => r.jobsPerSecond)),
      `${ratio(paired.median)} (${ratio(paired.min)} – ${ratio(paired.max)})`,
      `${us(pick(alone, (r) => r.worker))} / ${us(pick(followed, (r) => r.worker))}`,
      `${us(pick(alone, (r) => r.workerDb))} / ${us(pick(followed, (r) => r.workerDb))}`,
      `${us(pick(followed, (r) => r.api))} + ${us(pick(followed, (r) => r.apiDb))}`,
      `${us(pick(alone, (r) => r.harness))} / ${us(pick(followed, (r) => r.harness))}`,
      `${decimal(pick(followed, (r) => r.eventsPerJob).median)}, ${followed.reduce((n, r) => n + r.resets, 0)} resets`
    ]
  })
  const cell = (key: string) => us(summarize(cpu.get(key)!))
  const diff = (claimSize: number, gate: boolean) => {
    const a = cpu.get(`${claimSize}/batches/${gate}`)!
    const b = cpu.get(`${claimSize}/row triggers/${gate}`)!
    return summarize(a.map((x, i) => x - b[i]!))
  }
  const statementRows = claimSizes.map((claimSize) => {
    const closed = diff(claimSize, false)
    return [
      String(claimSize),
      cell(`${claimSize}/row triggers/false`),
      cell(`${claimSize}/batches/false`),
      `${decimal(closed.median, 1)} (${decimal(closed.min, 1)} – ${decimal(closed.max, 1)})`,
      cell(`${claimSize}/row triggers/true`),
      cell(`${claimSize}/batches/true`)
    ]
  })
  const worst = Math.min(...levels.map((c) => ratios.get(c)!.median))
  const markdown = [
    `**The budget.** Our drain of ${integer(backlog)} no-op jobs${context.quick ? " (quick mode; full mode 20,000)" : ""} (one worker process, WORKER_PREFETCH 500, results kept), ${pairs} pairs per concurrency in alternating order: with an API process (\`bun src/api.ts\`) and one client reading \`GET /events\` with no filter (every event: \`enqueued\` as the backlog is inserted, \`started\`, \`succeeded\`), and without. The ratio is paired (followed ÷ alone of the same pair), median (min – max). CPU per drained job (µs, median (min – max), from /proc, 10 ms ticks) from the start gate to the last completion: the worker process and its Postgres sessions, alone / followed; the API process + its sessions (followed only); the harness process, which polls the drain and runs the follower client, alone / followed. Load average (1/5/15 min) at the scenario's start / end: ${loadBefore} / ${loadAfter}.`,
    "",
    table(
      [
        "concurrency",
        "alone, jobs/s",
        "followed, jobs/s",
        "followed ÷ alone",
        "worker µs/job",
        "worker's Postgres µs/job",
        "API + its Postgres µs/job",
        "harness µs/job",
        "events a job (3 = all)"
      ],
      budgetRows
    ),
    "",
    `Budget (followed ≥ 0.90x of alone at every concurrency): **${worst >= 0.9 ? "met" : `missed`}** (worst paired median ${ratio(worst)}${worst >= 0.9 ? "" : `, ${decimal((0.9 - worst) * 100, 1)} points short`}).`,
    "",
    `**What nobody following pays.** CPU of one Postgres backend per job (µs) running the worker's claim and completion (\`JobRepo\`, prepared statements, as the worker runs them) over a backlog of 600 claims' worth of ready jobs (at most 20,000; half in quick mode), claims of 10, 32 (the default buffer) and 500, ${statementRounds} rounds in alternating order, median (min – max): "row triggers" are the statements without their event batches (as before migration 0012: with the gate open, 0008's row triggers write a row per job), "batches" as shipped. The difference is paired within a round.`,
    "",
    table(
      [
        "claim size",
        "gate closed: row triggers",
        "gate closed: batches",
        "batches − row triggers (paired)",
        "gate held: row triggers",
        "gate held: batches"
      ],
      statementRows
    )
  ].join("\n")
  return {
    title: "Event stream budget (issue #19)",
    markdown,
    figures: Object.fromEntries(levels.map((c) => [`eventsBudgetRatioC${c}`, ratios.get(c)!.median]))
  }
}
