/**
 * `bun bench/runtimes.ts [--quick]`: what each runtime costs our programs. The drain (no-op jobs, one worker
 * process at concurrency 8 and 32) and `POST /jobs` (64 keep-alive connections, after a warm-up) with the
 * worker and the API run by Bun, Node 24 and Deno (BENCH_RUNTIME, bench/Runtime.ts); the harness, the load
 * generator and Postgres are the same for all. Drains are paired: each run index drains once per runtime,
 * in turn, and so are the POST runs (the three APIs are up together, 5 connections each). Prints a
 * markdown section for bench/RESULTS.md.
 */
import * as ApiProcess from "./ApiProcess.ts"
import * as BenchDatabase from "./BenchDatabase.ts"
import * as HttpLoad from "./HttpLoad.ts"
import { decimal, integer, medianRange, table } from "./Markdown.ts"
import { summarize } from "./Stats.ts"
import * as OurDrain from "./scenarios/OurDrain.ts"

const quick = process.argv.includes("--quick")
const runs = quick ? 2 : 5
const backlog = quick ? 5_000 : 20_000
const levels = [8, 32]
const runtimes = ["bun", "node24", "deno"] as const
const seconds = quick ? 3 : 4
const warmUpRequests = quick ? 5_000 : 20_000
const log = (line: string) => console.error(`[runtimes] ${line}`)

const drains = new Map<string, Array<number>>()
const posts = new Map<string, Array<HttpLoad.LoadResult>>()

await BenchDatabase.using("runtimes", async (db) => {
  for (const concurrency of levels) {
    for (let r = 0; r < runs; r++) {
      for (const runtime of runtimes) {
        process.env.BENCH_RUNTIME = runtime
        const { jobsPerSecond } = await OurDrain.run(
          db,
          { backlog, concurrency, processes: 1 },
          `rt-${runtime}-c${concurrency}-${r}`
        )
        const key = `${runtime} c=${concurrency}`
        drains.set(key, [...(drains.get(key) ?? []), jobsPerSecond])
        log(`drain ${key} run ${r + 1}: ${integer(jobsPerSecond)} jobs/s`)
      }
    }
  }
  const body = JSON.stringify({ kind: "noop", payload: {} })
  // all three APIs up at once, so that each run index measures them one after the other (paired, like the
  // drains); a pool of 5 each (not 10) keeps the three within a shared server's connection budget
  process.env.DATABASE_POOL_MAX = "5"
  const apis = new Map<string, ApiProcess.ApiProcess>()
  try {
    for (const [i, runtime] of runtimes.entries()) {
      process.env.BENCH_RUNTIME = runtime
      apis.set(runtime, await ApiProcess.start(db.url, 18_090 + i))
    }
    const load = (runtime: string, maxRequests: number, s: number) =>
      HttpLoad.closedLoop({
        url: `${apis.get(runtime)!.baseUrl}/jobs`,
        body: () => body,
        connections: 64,
        seconds: s,
        maxRequests
      })
    for (const runtime of runtimes) await load(runtime, warmUpRequests, 30) // the JIT settles (scenarios/Enqueue.ts)
    for (let r = 0; r < runs; r++) {
      for (const runtime of runtimes) {
        await db.sql`TRUNCATE jobs`
        const result = await load(runtime, 2_000_000, seconds)
        posts.set(runtime, [...(posts.get(runtime) ?? []), result])
        log(
          `POST /jobs ${runtime} run ${r + 1}: ${integer(result.perSecond)} req/s, p99 ${decimal(result.latencyMs.p99)} ms, ${result.errors} errors`
        )
      }
    }
  } finally {
    for (const api of apis.values()) await api.stop()
  }
})

const label = { bun: "Bun 1.4.4", node24: "Node 24.22.3", deno: "Deno 2.9.6" } as const
const drainRows = runtimes.map((runtime) => [
  label[runtime],
  ...levels.map((c) => medianRange(summarize(drains.get(`${runtime} c=${c}`) ?? []))),
  ...levels.map((c) => {
    const mine = summarize(drains.get(`${runtime} c=${c}`) ?? []).median
    const bun = summarize(drains.get(`bun c=${c}`) ?? []).median
    return `${Math.round((mine / bun) * 100)}%`
  })
])
const postRows = runtimes.map((runtime) => {
  const results = posts.get(runtime) ?? []
  const bun = summarize((posts.get("bun") ?? []).map((p) => p.perSecond)).median
  const rate = summarize(results.map((p) => p.perSecond))
  return [
    label[runtime],
    medianRange(rate),
    `${Math.round((rate.median / bun) * 100)}%`,
    decimal(summarize(results.map((p) => p.latencyMs.p50)).median),
    decimal(summarize(results.map((p) => p.latencyMs.p99)).median),
    String(results.reduce((n, p) => n + p.errors, 0))
  ]
})
console.log(
  [
    `Drain, no-op jobs, one worker process (${integer(backlog)}-job backlog, ${runs} paired runs; median (min-max) jobs/s):`,
    "",
    table(["runtime", ...levels.map((c) => `c=${c}`), ...levels.map((c) => `vs Bun, c=${c}`)], drainRows),
    "",
    `\`POST /jobs\`, 64 keep-alive connections (Bun's fetch as the client), ${seconds} s runs after ${integer(warmUpRequests)} warm-up requests, ${runs} paired runs, \`DATABASE_POOL_MAX=5\` per API:`,
    "",
    table(["runtime", "req/s", "vs Bun", "p50 ms", "p99 ms", "errors"], postRows)
  ].join("\n")
)
