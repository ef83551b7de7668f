/**
 * The API behind PgBouncer (issue #21): `POST /jobs` (64 keep-alive connections) and `POST /jobs/batch`
 * (1,000 jobs a request, 4 connections) through a private PgBouncer in transaction mode, beside the same
 * API program connected directly. Three API processes run side by side on one database, each with the
 * default pool of 10 connections:
 * - `direct`: DATABASE_URL to Postgres (the defaults: 32 statements pipelined a connection, prepared statements);
 * - `pgbouncer`: DATABASE_URL through the pooler, DATABASE_POOLER=transaction (pipelining on, prepared
 *   statements off), DATABASE_LISTEN_URL direct: the runbook's deployment;
 * - `pgbouncer, DATABASE_MULTIPLEX=1`: the same without pipelining (what the docs advised before this was
 *   measured).
 * The pooler has `default_pool_size` 4 (fewer server connections than the API's 10 client connections).
 * Each round runs every configuration once, the order reversed from round to round; the figure is the median
 * of the per-round ratios to `direct`, with their range. CPU per request of the API process, the pooler and
 * the database's backends comes from /proc (user + system ticks over the run). Prints a Markdown section
 * for bench/RESULTS.md.
 *
 *   bun run bench/pgbouncer.ts [rounds=5] [seconds=8] [warm-up requests=30000]
 */
import { readFileSync } from "node:fs"
import { loadavg } from "node:os"
import * as PgBouncer from "../test/support/pgbouncer.ts"
import * as ApiProcess from "./ApiProcess.ts"
import * as BenchDatabase from "./BenchDatabase.ts"
import { freePort } from "./FreePort.ts"
import * as HttpLoad from "./HttpLoad.ts"
import { decimal, integer, table } from "./Markdown.ts"
import { summarize } from "./Stats.ts"

const rounds = Number(process.argv[2] ?? 5)
const seconds = Number(process.argv[3] ?? 8)
const warmUp = Number(process.argv[4] ?? 30_000)
const batchSize = 1000
const poolSize = 4
const loadAtStart = loadavg()

/** CPU ticks (user + system, 1/100 s) of a process, or 0 once it is gone. */
const ticks = (pid: number) => {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
    return Number(fields[11]) + Number(fields[12])
  } catch {
    return 0
  }
}

interface Setup {
  readonly name: string
  readonly api: ApiProcess.ApiProcess
}

interface Measured {
  readonly rate: number
  readonly errors: number
  readonly p50: number
  readonly p99: number
  /** CPU µs per request of the API process, the pooler and the database's backends. */
  readonly cpu: { readonly api: number; readonly pooler: number; readonly postgres: number }
}

await BenchDatabase.using("pgbouncer", async (db) => {
  const bouncer = await PgBouncer.start({
    server: db.url,
    poolMode: "transaction",
    poolSize,
    settings: { query_wait_timeout: 30 }
  })
  const setups: Array<Setup> = []
  try {
    // the API's bounds, set by the server for the pooled sessions as docs/runbook.md says (this database only)
    await db.sql.unsafe(`ALTER ROLE CURRENT_USER IN DATABASE "${db.name}" SET statement_timeout = '5s'`)
    await db.sql.unsafe(`ALTER ROLE CURRENT_USER IN DATABASE "${db.name}" SET lock_timeout = '1s'`)
    const pooled = { DATABASE_POOLER: "transaction", DATABASE_LISTEN_URL: db.url }
    setups.push({ name: "direct", api: await ApiProcess.start(db.url, freePort()) })
    setups.push({
      name: "direct, DATABASE_PREPARE=false",
      api: await ApiProcess.start(db.url, freePort(), { DATABASE_PREPARE: "false" })
    })
    setups.push({ name: "pgbouncer", api: await ApiProcess.start(bouncer.url(db.name), freePort(), pooled) })
    setups.push({
      name: "pgbouncer, DATABASE_MULTIPLEX=1",
      api: await ApiProcess.start(bouncer.url(db.name), freePort(), { ...pooled, DATABASE_MULTIPLEX: "1" })
    })
    const single = JSON.stringify({ kind: "noop", payload: {} })
    const batch = JSON.stringify({
      jobs: Array.from({ length: batchSize }, () => ({ kind: "noop", payload: {} }))
    })
    const loads = {
      "POST /jobs": { path: "/jobs", body: single, connections: 64, jobs: 1 },
      "POST /jobs/batch": { path: "/jobs/batch", body: batch, connections: 4, jobs: batchSize }
    } as const

    const backends = async () => {
      const rows: Array<{ pid: number }> = await db.sql`
        SELECT pid FROM pg_stat_activity WHERE datname = ${db.name} AND pid <> pg_backend_pid()`
      return rows.map((r) => r.pid)
    }
    const measure = async (setup: Setup, load: (typeof loads)[keyof typeof loads]): Promise<Measured> => {
      await db.sql`TRUNCATE jobs`
      const before = new Map((await backends()).map((pid) => [pid, ticks(pid)]))
      const apiBefore = ticks(setup.api.process.pid)
      const poolerBefore = ticks(bouncer.pid)
      const result = await HttpLoad.closedLoop({
        url: `${setup.api.baseUrl}${load.path}`,
        body: () => load.body,
        connections: load.connections,
        seconds,
        maxRequests: 2_000_000
      })
      // a backend that ended during the run (an idle pool connection closing) took its ticks with it: its
      // share is missing, not subtracted
      let postgres = 0
      for (const pid of await backends()) postgres += ticks(pid) - (before.get(pid) ?? 0)
      const perRequest = (t: number) => (t * 10_000) / Math.max(1, result.requests)
      if (result.errors > 0) console.log(`  errors: ${result.firstErrors?.join("; ")}`)
      return {
        rate: ((result.requests - result.errors) * load.jobs) / result.seconds,
        errors: result.errors,
        p50: result.latencyMs.p50,
        p99: result.latencyMs.p99,
        cpu: {
          api: perRequest(ticks(setup.api.process.pid) - apiBefore),
          pooler: setup.name.startsWith("direct") ? 0 : perRequest(ticks(bouncer.pid) - poolerBefore),
          postgres: perRequest(postgres)
        }
      }
    }

    // warm-up, not reported: JSC's JIT settles over the first tens of thousands of requests (Enqueue.ts)
    for (const setup of setups) {
      for (const [path, body, connections, requests] of [
        ["/jobs", single, 64, warmUp],
        ["/jobs/batch", batch, 4, Math.ceil(warmUp / 300)]
      ] as const) {
        await HttpLoad.closedLoop({
          url: `${setup.api.baseUrl}${path}`,
          body: () => body,
          connections,
          seconds: 40,
          maxRequests: requests
        })
      }
      console.log(`warmed up: ${setup.name}`)
    }

    const results = new Map<string, Array<Measured>>()
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? setups : [...setups].reverse()
      for (const [loadName, load] of Object.entries(loads)) {
        for (const setup of order) {
          const measured = await measure(setup, load)
          const key = `${loadName}|${setup.name}`
          results.set(key, [...(results.get(key) ?? []), measured])
          console.log(
            `round ${round + 1} ${loadName} ${setup.name}: ${integer(measured.rate)} jobs/s, p50 ${decimal(measured.p50)} ms, p99 ${decimal(measured.p99)} ms, CPU µs/request api ${integer(measured.cpu.api)} pooler ${integer(measured.cpu.pooler)} postgres ${integer(measured.cpu.postgres)}, ${measured.errors} errors`
          )
        }
      }
    }

    const rows: Array<Array<string>> = []
    for (const loadName of Object.keys(loads)) {
      const direct = results.get(`${loadName}|direct`)!
      for (const setup of setups) {
        const runs = results.get(`${loadName}|${setup.name}`)!
        const rate = summarize(runs.map((r) => r.rate))
        const ratios = summarize(runs.map((r, i) => r.rate / direct[i]!.rate))
        const median = (f: (m: Measured) => number) => summarize(runs.map(f)).median
        rows.push([
          `${loadName}, ${setup.name}`,
          `${integer(rate.median)} (${integer(rate.min)} – ${integer(rate.max)})`,
          setup.name === "direct"
            ? ""
            : `${decimal(ratios.median)}x (${decimal(ratios.min)} – ${decimal(ratios.max)})`,
          `${decimal(
            median((m) => m.p50),
            1
          )} / ${decimal(
            median((m) => m.p99),
            1
          )}`,
          `${integer(median((m) => m.cpu.api))} / ${setup.name.startsWith("direct") ? "-" : integer(median((m) => m.cpu.pooler))} / ${integer(median((m) => m.cpu.postgres))}`,
          String(runs.reduce((n, r) => n + r.errors, 0))
        ])
      }
    }
    const postgres = (await db.sql`SELECT version() AS v`)[0].v as string
    console.log(`
## Behind PgBouncer (issue #21)

Written by \`bun run bench/pgbouncer.ts ${rounds} ${seconds}\` on ${new Date().toISOString()}: ${bouncer.version}
(Debian's package), ${postgres.split(" on ")[0]}, Bun ${Bun.version}, this shared 2-core machine
(1-minute load average ${loadAtStart[0]!.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end, counting this run).

Four API processes on one database, each with the default pool (\`DATABASE_POOL_MAX=10\`): **direct**
(the defaults: 32 statements pipelined a connection, named prepared statements); the same with
\`DATABASE_PREPARE=false\` (what transaction mode turns off); **pgbouncer**, the
deployment of docs/runbook.md (DATABASE_URL through a private PgBouncer in transaction mode with
\`default_pool_size = ${poolSize}\`, \`DATABASE_POOLER=transaction\`: pipelining on, prepared statements off;
\`DATABASE_LISTEN_URL\` direct; the statement bounds set for the role in this database); and the same with
\`DATABASE_MULTIPLEX=1\`. Load: \`POST /jobs\` (one no-op job a request, 64 keep-alive connections) and
\`POST /jobs/batch\` (${integer(batchSize)} jobs a request, 4 connections), ${seconds} s a run, closed loop (Bun fetch, on the same
machine), after a warm-up of ${integer(warmUp)} and ${Math.ceil(warmUp / 300)} requests per process. ${rounds} rounds; in each, every
configuration runs once, the order reversed from one round to the next; the ratio is to \`direct\` in the
same round (median, range). CPU per request from /proc: the API process, the pooler, the database's backends.

${table(
  [
    "load, configuration",
    "jobs/s, median (range)",
    "÷ direct, same round",
    "latency p50 / p99, ms",
    "CPU µs a request: API / pooler / Postgres",
    "errors"
  ],
  rows
)}
`)
  } finally {
    for (const setup of setups) await setup.api.stop()
    await bouncer.stop()
  }
})
