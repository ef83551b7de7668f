/**
 * Issue 8, end to end under steady load, and memory: the API (`bun src/api.ts`) and one worker process
 * (WORKER_CONCURRENCY=32, default prefetch: a steady trickle, not a drain) running on one database, the
 * harness offering `POST /jobs` (no-op jobs) at a fixed rate for a bounded time with bounded concurrency
 * (FixedRate). Each run uses its own queue name, so its jobs are read back on their own once all have
 * finished: enqueue-to-completion latency is `finished_at - created_at`, both stamped by the database. The
 * RSS of both processes is sampled every 250 ms across the runs: start (warmed up, before the first run),
 * peak, and end (after the last run's jobs finished).
 */
import type { SQL } from "bun"
import * as ApiProcess from "../ApiProcess.ts"
import * as BenchDatabase from "../BenchDatabase.ts"
import * as FixedRate from "../FixedRate.ts"
import { freePort } from "../FreePort.ts"
import { decimal, integer, medianRange, table } from "../Markdown.ts"
import * as RssSampler from "../RssSampler.ts"
import type { Context, Section } from "../Scenario.ts"
import { summarize } from "../Stats.ts"
import * as WorkerProcess from "../WorkerProcess.ts"

const concurrency = 32
const maxInFlight = 64

interface RunResult {
  readonly load: FixedRate.FixedRateResult
  readonly jobs: number
  readonly p50: number
  readonly p99: number
  readonly max: number
}

const unfinished = (sql: SQL, queue: string) =>
  sql`SELECT count(*)::int AS n FROM jobs WHERE queue = ${queue} AND finished_at IS NULL`.then((rows) =>
    Number(rows[0].n)
  )

const waitFinished = async (
  sql: SQL,
  queue: string,
  worker: WorkerProcess.WorkerProcess,
  timeoutMs: number
) => {
  const deadline = Date.now() + timeoutMs
  while ((await unfinished(sql, queue)) > 0) {
    if (worker.process.exitCode !== null) throw new Error(`the worker exited; see ${worker.logFile}`)
    if (Date.now() > deadline) throw new Error(`jobs of ${queue} not finished within ${timeoutMs} ms`)
    await Bun.sleep(50)
  }
}

const completionLatency = async (sql: SQL, queue: string) => {
  const [row] = await sql`
    SELECT count(*)::int AS jobs,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99,
           max(ms) AS max
    FROM (SELECT extract(epoch FROM finished_at - created_at) * 1000 AS ms
          FROM jobs WHERE queue = ${queue} AND status = 'succeeded') t`
  return { jobs: Number(row.jobs), p50: Number(row.p50), p99: Number(row.p99), max: Number(row.max) }
}

export const run = async (context: Context): Promise<Section> => {
  const perSecond = context.quick ? 300 : 500
  const seconds = context.quick ? 5 : 20
  const results: Array<RunResult> = []
  const rss = { api: { start: 0, peak: 0, end: 0 }, worker: { start: 0, peak: 0, end: 0 } }

  await BenchDatabase.using("e2e", async (db) => {
    const api = await ApiProcess.start(db.url, freePort())
    const worker = WorkerProcess.spawn(db.url, "e2e", { WORKER_CONCURRENCY: String(concurrency) })
    try {
      const post = (queue: string) => () => JSON.stringify({ kind: "noop", payload: {}, queue })
      // warm up both processes: a short burst, run to completion
      const warm = await FixedRate.offer({
        url: `${api.baseUrl}/jobs`,
        body: post("e2e-warm-up"),
        perSecond,
        seconds: 1,
        maxInFlight
      })
      if (warm.errors > 0) throw new Error(`${warm.errors} errors while warming up`)
      await waitFinished(db.sql, "e2e-warm-up", worker, 30_000)
      const pids = [api.process.pid, worker.process.pid]
      rss.api.start = RssSampler.read(api.process.pid)
      rss.worker.start = RssSampler.read(worker.process.pid)
      const sampler = RssSampler.start(pids)
      try {
        for (let r = 0; r < context.runs; r++) {
          const queue = `e2e-${r}`
          const load = await FixedRate.offer({
            url: `${api.baseUrl}/jobs`,
            body: post(queue),
            perSecond,
            seconds,
            maxInFlight
          })
          await waitFinished(db.sql, queue, worker, 60_000)
          const latency = await completionLatency(db.sql, queue)
          results.push({ load, ...latency })
          context.log(
            `e2e run ${r + 1}: offered ${integer(perSecond)}/s, achieved ${integer(load.achievedPerSecond)}/s, ${load.errors} errors, ${load.late} late; enqueue->completion p50 ${decimal(latency.p50)} ms, p99 ${decimal(latency.p99)} ms (${integer(latency.jobs)} jobs)`
          )
        }
      } finally {
        const peaks = sampler.stop()
        rss.api.peak = peaks.get(api.process.pid) ?? Number.NaN
        rss.worker.peak = peaks.get(worker.process.pid) ?? Number.NaN
      }
      rss.api.end = RssSampler.read(api.process.pid)
      rss.worker.end = RssSampler.read(worker.process.pid)
      context.log(
        `e2e RSS MiB: API ${decimal(rss.api.start, 0)} / ${decimal(rss.api.peak, 0)} / ${decimal(rss.api.end, 0)}, worker ${decimal(rss.worker.start, 0)} / ${decimal(rss.worker.peak, 0)} / ${decimal(rss.worker.end, 0)} (start / peak / end)`
      )
    } finally {
      await Promise.all([api.stop(), worker.stop()])
    }
  })

  const ms = (values: ReadonlyArray<number>) => `${medianRange(summarize(values), decimal)} ms`
  const mib = (n: number) => `${decimal(n, 0)} MiB`
  const markdown = [
    `\`POST /jobs\` (no-op jobs) offered at ${integer(perSecond)}/s for ${seconds} s a run, open loop, at most ${maxInFlight} requests in flight, from the harness process; the API process and one worker process (concurrency ${concurrency}, default prefetch) on the same database and the same 2 cores. ${context.runs} runs after a 1 s warm-up, median (min – max). Latency from enqueue to completion is \`finished_at - created_at\` of every job of the run (both the database's \`now()\`: the enqueue transaction's start and the completing transaction's start).${context.quick ? ` Quick mode: ${perSecond}/s for ${seconds} s instead of 500/s for 20 s.` : ""}`,
    "",
    table(
      ["what", "value"],
      [
        [
          "achieved rate (2xx answers/s)",
          `${medianRange(summarize(results.map((r) => r.load.achievedPerSecond)))} req/s`
        ],
        [
          "errors (non-2xx or failed requests), per run",
          results.map((r) => String(r.load.errors)).join(" / ")
        ],
        [
          "requests sent > 10 ms late (every slot busy), per run",
          results.map((r) => String(r.load.late)).join(" / ")
        ],
        ["`POST /jobs` latency p50", ms(results.map((r) => r.load.latencyMs.p50))],
        ["`POST /jobs` latency p99", ms(results.map((r) => r.load.latencyMs.p99))],
        ["enqueue → completion p50", ms(results.map((r) => r.p50))],
        ["enqueue → completion p99", ms(results.map((r) => r.p99))],
        ["enqueue → completion max", ms(results.map((r) => r.max))],
        ["jobs succeeded, per run", results.map((r) => integer(r.jobs)).join(" / ")]
      ]
    ),
    "",
    "Memory (RSS, sampled every 250 ms across all runs):",
    "",
    table(
      ["process", "start (warmed up)", "peak under load", "end (jobs finished)"],
      [
        ["API (`bun src/api.ts`)", mib(rss.api.start), mib(rss.api.peak), mib(rss.api.end)],
        [
          `worker (\`bun src/worker.ts\`, concurrency ${concurrency})`,
          mib(rss.worker.start),
          mib(rss.worker.peak),
          mib(rss.worker.end)
        ]
      ]
    )
  ].join("\n")
  return { title: "End to end under steady load, and memory", markdown }
}
