/**
 * Scenario 2, the physical reference: `pgbench` running our claim-and-complete statements (and the
 * enqueue insert) with no application in between, at the same client counts as the drain. Each client
 * loops over bench/pgbench/claim-complete.sql: insert a batch, claim it, complete it, each statement in
 * its own transaction. Jobs/s = transactions/s × batch. A 20,000-job backlog is present and analyzed.
 */
import { readFileSync } from "node:fs"
import * as Backlog from "../Backlog.ts"
import * as BenchDatabase from "../BenchDatabase.ts"
import { benchDirectory } from "../BenchDependencies.ts"
import { integer, medianRange, table } from "../Markdown.ts"
import type { ChartPoint, Context, Section } from "../Scenario.ts"
import { summarize } from "../Stats.ts"
import { concurrencies } from "./Drain.ts"

const candidates = ["pgbench", "/usr/lib/postgresql/15/bin/pgbench"]

export const findPgbench = async () => {
  for (const candidate of candidates) {
    try {
      const child = Bun.spawn([candidate, "--version"], { stdout: "pipe", stderr: "ignore" })
      const version = (await new Response(child.stdout).text()).trim()
      if ((await child.exited) === 0) return { path: candidate, version }
    } catch {
      // not this one
    }
  }
  return undefined
}

export interface PgbenchRun {
  readonly tps: number
  readonly latencyMs: number
}

export const pgbench = async (
  binary: string,
  url: string,
  script: string,
  options: {
    readonly clients: number
    /** Run for this long (`-T`), or `transactions` per client (`-t`) when given. */
    readonly seconds: number
    readonly transactions?: number
    readonly variables?: Record<string, string>
  }
): Promise<PgbenchRun> => {
  const parsed = new URL(url)
  const args = [
    binary,
    "-n",
    "-M",
    "prepared",
    "-h",
    parsed.hostname,
    "-p",
    parsed.port || "5432",
    "-U",
    decodeURIComponent(parsed.username || "postgres"),
    "-c",
    String(options.clients),
    "-j",
    String(Math.min(options.clients, 2)),
    ...(options.transactions === undefined
      ? ["-T", String(options.seconds)]
      : ["-t", String(options.transactions)]),
    "-f",
    script.startsWith("/") ? script : `${benchDirectory}pgbench/${script}`,
    ...Object.entries(options.variables ?? {}).flatMap(([k, v]) => ["-D", `${k}=${v}`]),
    parsed.pathname.slice(1)
  ]
  const child = Bun.spawn(args, { stdout: "pipe", stderr: "pipe" })
  const [out, err, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited
  ])
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(out)?.[1]
  const latency = /latency average = ([\d.]+) ms/.exec(out)?.[1]
  if (code !== 0 || tps === undefined) throw new Error(`pgbench ${script} failed: ${err.slice(-1500)}`)
  return { tps: Number(tps), latencyMs: Number(latency ?? Number.NaN) }
}

export const run = async (context: Context): Promise<Section> => {
  const found = await findPgbench()
  if (found === undefined) {
    return {
      title: "The physical reference: pgbench",
      markdown: "**Not measured:** `pgbench` is not installed (`apt-get install postgresql-contrib`)."
    }
  }
  const seconds = context.quick ? 2 : 5
  const levels = concurrencies(context.quick)
  const batches = [1, 100]
  const results = new Map<string, Array<number>>()
  await BenchDatabase.using("pgbench", async (db) => {
    for (const batch of batches) {
      for (const clients of levels) {
        for (let i = 0; i < context.runs; i++) {
          await Backlog.reset(db.sql)
          await Backlog.fill(db.sql, 20_000)
          await Backlog.analyze(db.sql)
          const r = await pgbench(found.path, db.url, "claim-complete.sql", {
            clients,
            seconds,
            variables: { batch: String(batch) }
          })
          const key = `${batch}:${clients}`
          results.set(key, [...(results.get(key) ?? []), r.tps * batch])
          context.log(
            `pgbench batch ${batch} clients ${clients} run ${i + 1}: ${integer(r.tps * batch)} jobs/s`
          )
        }
      }
    }
  })
  // the minimal SKIP LOCKED table (issue #21's reference), batch 100, after ours, the same backlog
  await BenchDatabase.using(
    "pgbench_minimal",
    async (db) => {
      await db.sql.unsafe(readFileSync(`${benchDirectory}pgbench/minimal-schema.sql`, "utf8"))
      for (const clients of levels) {
        for (let i = 0; i < context.runs; i++) {
          await db.sql`TRUNCATE minimal_jobs`
          await db.sql`INSERT INTO minimal_jobs (payload) SELECT '{}'::jsonb FROM generate_series(1, 20000)`
          await db.sql`ANALYZE minimal_jobs`
          const r = await pgbench(found.path, db.url, "minimal.sql", {
            clients,
            seconds,
            variables: { batch: "100" }
          })
          results.set(`minimal:${clients}`, [...(results.get(`minimal:${clients}`) ?? []), r.tps * 100])
          context.log(
            `pgbench minimal table batch 100 clients ${clients} run ${i + 1}: ${integer(r.tps * 100)} jobs/s`
          )
        }
      }
    },
    "empty"
  )
  const chart: Array<ChartPoint> = []
  for (const batch of batches) {
    for (const clients of levels) {
      chart.push({
        system: `pgbench, batch ${batch}`,
        concurrency: clients,
        jobsPerSecond: summarize(results.get(`${batch}:${clients}`)!).median
      })
    }
  }
  const rows = levels.map((clients) => [
    String(clients),
    ...batches.map((batch) => medianRange(summarize(results.get(`${batch}:${clients}`)!))),
    medianRange(summarize(results.get(`minimal:${clients}`)!))
  ])
  const markdown = [
    `${found.version}, \`-M prepared -n -T ${seconds}\`, threads = min(clients, 2). Script: [bench/pgbench/claim-complete.sql](pgbench/claim-complete.sql): insert a batch, claim it with our claim statement, complete it with our guarded completion, each statement its own transaction; a 20,000-job backlog analyzed before each run${context.quick ? " (quick mode: 2 s runs, clients 1, 8, 32)" : ""}. Jobs/s = transactions/s × batch; ${context.runs} runs each, median (min – max).`,
    "",
    'The last column is the minimal SKIP LOCKED table issue #21 compares us with ([minimal.sql](pgbench/minimal.sql): bigint key, status, jsonb payload, one partial index; insert, then claim and complete in one transaction), batch 100, the same backlog, run after ours; bench/RESULTS.md ("Hot path statements") has where the difference goes.',
    "",
    table(
      [
        "clients",
        "batch 1 (insert+claim+complete), jobs/s",
        "batch 100, jobs/s",
        "minimal table, batch 100, jobs/s"
      ],
      rows
    )
  ].join("\n")
  const best = Math.max(...chart.filter((p) => p.system.endsWith("100")).map((p) => p.jobsPerSecond))
  return { title: "The physical reference: pgbench", markdown, chart, figures: { pgbenchBatchedBest: best } }
}
