/**
 * What watching costs the work: the drain of 100,000 queued no-op jobs by one worker process (concurrency
 * 32), on a table that also holds 1,000,000 finished jobs, with and without 10 dashboards polling every
 * second (each poll: `GET /stats`, the overview, and `GET /jobs?limit=50`, the jobs list's first page, through
 * a real API process). Runs alternate (quiet, watched / watched, quiet) to cancel drift; the figure is the
 * median of the paired ratios. Writes bench/DASHBOARD.md.
 *
 *   bun run bench/dashboard-cost.ts [pairs=3]
 */
import { writeFileSync } from "node:fs"
import { loadavg } from "node:os"
import * as ApiProcess from "./ApiProcess.ts"
import * as BenchDatabase from "./BenchDatabase.ts"
import { modulePath } from "./BenchKinds.ts"
import { freePort } from "./FreePort.ts"
import * as WorkerProcess from "./WorkerProcess.ts"

const pairs = Number(process.argv[2] ?? 3)
const loadAtStart = loadavg()[0]!
const finished = 1_000_000
const queued = 100_000
const dashboards = 10

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

await BenchDatabase.using("dashboard", async (db) => {
  const seedStarted = performance.now()
  // finished jobs spread over the last 24 hours, three queues, 2% failed
  await db.sql.unsafe(`
    INSERT INTO jobs (queue, kind, payload, status, attempts, created_at, run_at, started_at, finished_at, updated_at)
    SELECT 'q' || (g % 3), 'drain_noop', jsonb_build_object('customer', g % 1000),
           CASE WHEN g % 50 = 0 THEN 'failed_permanent' ELSE 'succeeded' END, 1, t, t,
           t + interval '5 ms', t + interval '20 ms', t + interval '20 ms'
    FROM generate_series(1, ${finished}) g,
         LATERAL (SELECT now() - (g % 86400) * interval '1 second' AS t) x`)
  await db.sql`VACUUM ANALYZE jobs`
  console.log(`seeded ${finished} finished jobs in ${Math.round(performance.now() - seedStarted)} ms`)

  const api = await ApiProcess.start(db.url, freePort())
  const statsTimes: Array<number> = []
  const listTimes: Array<number> = []

  const drain = async (watched: boolean, run: number) => {
    await db.sql.unsafe(
      `INSERT INTO jobs (queue, kind, payload) SELECT 'default', 'drain_noop', '{}'::jsonb FROM generate_series(1, ${queued})`
    )
    await db.sql`ANALYZE jobs`
    let polling = watched
    const pollers = Array.from({ length: watched ? dashboards : 0 }, async (_, i) => {
      await Bun.sleep(i * (1000 / dashboards)) // spread over the second, as independent viewers are
      while (polling) {
        const started = performance.now()
        const stats = fetch(`${api.baseUrl}/stats`).then(async (r) => {
          await r.arrayBuffer()
          statsTimes.push(performance.now() - started)
        })
        const list = fetch(`${api.baseUrl}/jobs?limit=50`).then(async (r) => {
          await r.arrayBuffer()
          listTimes.push(performance.now() - started)
        })
        await Promise.all([stats, list])
        await Bun.sleep(Math.max(0, 1000 - (performance.now() - started)))
      }
    })
    if (watched) await Bun.sleep(1500) // the dashboards are open before the work starts
    const started = performance.now()
    const worker = WorkerProcess.spawn(db.url, `dashboard-cost-${run}`, {
      JOBS_MODULE: modulePath,
      WORKER_CONCURRENCY: "32",
      WORKER_PREFETCH: "500"
    })
    for (;;) {
      const [row] = await db.sql`
        SELECT EXISTS (SELECT 1 FROM jobs WHERE status IN ('queued', 'retrying'))
            OR EXISTS (SELECT 1 FROM jobs WHERE status = 'running') AS busy`
      if (!row.busy) break
      await Bun.sleep(50)
    }
    const elapsed = performance.now() - started
    polling = false
    await Promise.all(pollers)
    await worker.stop()
    await db.sql`DELETE FROM jobs WHERE queue = 'default'`
    await db.sql`VACUUM ANALYZE jobs`
    const rate = queued / (elapsed / 1000)
    console.log(
      `${watched ? "watched" : "quiet  "} run ${run}: ${Math.round(rate)} jobs/s (${Math.round(elapsed)} ms, worker start included)`
    )
    return rate
  }

  const ratios: Array<number> = []
  const rows: Array<string> = []
  for (let pair = 0; pair < pairs; pair++) {
    const order = pair % 2 === 0 ? [false, true] : [true, false]
    const rates: Record<string, number> = {}
    for (const watched of order) rates[String(watched)] = await drain(watched, pair * 2 + (watched ? 1 : 0))
    const ratio = rates.true! / rates.false!
    ratios.push(ratio)
    rows.push(
      `| ${pair + 1} | ${Math.round(rates.false!)} | ${Math.round(rates.true!)} | ${ratio.toFixed(3)} |`
    )
  }
  await api.stop()
  // the order of the runs alternates from pair to pair, so an order effect cancels in the mean of the ratios
  const geometricMean = Math.exp(ratios.reduce((sum, r) => sum + Math.log(r), 0) / ratios.length)
  const cost = (1 - geometricMean) * 100
  const medianCost = (1 - median(ratios)) * 100
  const percentile = (values: Array<number>, p: number) =>
    values.length === 0 ? Number.NaN : [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) * p)]!
  const spread = Math.max(...ratios) - Math.min(...ratios)
  const verdict =
    Math.max(...ratios) < 1 && cost >= 5
      ? `Every pair ran slower watched: the target is missed by ${(cost - 5).toFixed(1)} points. The machine has 2 cores and the drain keeps both busy, so every millisecond the API process and Postgres spend answering the dashboards is taken from the worker and its Postgres backend.`
      : spread * 100 > 5
        ? "The spread of the pairs is wider than the target: this run neither shows the target met nor missed. Read it with the direct cost below, and repeat it on a quiet machine."
        : cost < 5
          ? "The target is met."
          : `The target is missed by ${(cost - 5).toFixed(1)} points.`
  const report = `# What the dashboard costs the drain

Written by \`bun run bench/dashboard-cost.ts ${pairs}\` on ${new Date().toISOString()}. The machine is the shared
2-core one of bench/RESULTS.md (1-minute load average ${loadAtStart.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end,
counting this run; when others work, single runs move by tens of percent); the paired ratio (the two runs of a pair back to back, their order alternating) is the figure to read.

One worker process (concurrency 32, prefetch 500) drains ${queued.toLocaleString("en")} queued no-op jobs on a
table that also holds ${finished.toLocaleString("en")} finished ones (spread over the last 24 hours), quiet or
watched by ${dashboards} dashboards polling every second (each poll: \`GET /stats\` and \`GET /jobs?limit=50\`,
through one API process with the default \`API_STATS_INTERVAL\` of 5 s). The time runs from the worker's spawn
to the moment no job is queued or running (process start-up included in both).

| pair | quiet, jobs/s | watched, jobs/s | watched ÷ quiet |
|---|---:|---:|---:|
${rows.join("\n")}

Cost of watching (1 − the geometric mean of the paired ratios): **${cost.toFixed(1)}%** of the drain's throughput
(median pair ${medianCost.toFixed(1)}%; paired ratios from ${Math.min(...ratios).toFixed(3)} to ${Math.max(...ratios).toFixed(3)}; target < 5%). \
${verdict}

While watched, \`GET /stats\` answered in p50 ${percentile(statsTimes, 0.5).toFixed(1)} ms, p99 ${percentile(statsTimes, 0.99).toFixed(1)} ms, max ${Math.max(...statsTimes).toFixed(1)} ms
(${statsTimes.length} requests: most answered from the shared cache; the slowest are the ones that computed, once per 5 s), and
\`GET /jobs?limit=50\` in p50 ${percentile(listTimes, 0.5).toFixed(1)} ms, p95 ${percentile(listTimes, 0.95).toFixed(1)} ms.
`
  writeFileSync(new URL("./DASHBOARD.md", import.meta.url), report)
  console.log(report)
})
