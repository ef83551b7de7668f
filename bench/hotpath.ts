/**
 * `bun run bench/hotpath.ts`: our hot path's statements (bench/pgbench/claim-complete.sql: insert a batch,
 * claim it, complete it) under pgbench, on schema variants paired in the same run, beside the minimal
 * SKIP LOCKED table (bench/pgbench/minimal.sql). Issue #21.
 *
 * VARIANTS: `;`-separated `name=migrations-dir[+extra.sql][@script.sql]` (empty dir: the repository's
 * migrations; the extra SQL runs after them; the script defaults to SCRIPT), e.g. `base=;ff70=+/tmp/ff.sql`.
 * The name `minimal` is the minimal table. Each round runs every variant once, the order rotating by round,
 * each on a freshly truncated table with a 20,000-job backlog, analyzed and checkpointed. Prints per variant
 * the median jobs/s and its paired ratio to the first variant (median, range), and, when the server is a
 * private cluster (PGDATA set: its postmaster's pid is read from there), the cluster's CPU per job (the
 * postmaster's own and reaped children's time plus its live children's, from /proc) and WAL bytes per job
 * (pg_current_wal_lsn; only meaningful on a server nobody else writes to).
 *
 * ROUNDS (5), SECONDS (5), CLIENTS (4,8), BATCH (100), BACKLOG (20000), SCRIPT (claim-complete.sql), WARMUP (1).
 *
 * bench/RESULTS.md ("Hot path statements") ran it on a private cluster (initdb, the shared server's
 * settings, port 55432) with BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:55432/postgres, PGDATA set,
 * ROUNDS=6 and VARIANTS="before=<copy of migrations/ up to 0011>@<worker-cycle.sql as of a522c44>;
 * after=@worker-cycle.sql;issue-script=<same copy>@claim-complete.sql;minimal=".
 */
import { readdirSync, readFileSync } from "node:fs"
import { Effect } from "effect"
import * as Database from "../src/db/Database.ts"
import * as Migrator from "../src/db/Migrator.ts"
import * as Backlog from "./Backlog.ts"
import * as BenchDatabase from "./BenchDatabase.ts"
import { benchDirectory } from "./BenchDependencies.ts"
import { summarize } from "./Stats.ts"
import { pgbench } from "./scenarios/Pgbench.ts"

const rounds = Number(process.env.ROUNDS ?? 5)
const seconds = Number(process.env.SECONDS ?? 5)
const clientLevels = (process.env.CLIENTS ?? "4,8").split(",").map(Number)
const batch = Number(process.env.BATCH ?? 100)
const backlog = Number(process.env.BACKLOG ?? 20_000)
const script = process.env.SCRIPT ?? "claim-complete.sql"
const binary = process.env.PGBENCH ?? "pgbench"
const pgdata = process.env.PGDATA
// rounds run first and not counted (a fresh database's first runs wrote twice the WAL of later ones)
const warmup = Number(process.env.WARMUP ?? 1)

interface Variant {
  readonly name: string
  readonly directory: string | undefined
  readonly extra: string | undefined
  readonly script: string
}

const variants: Array<Variant> = (process.env.VARIANTS ?? "base=")
  .split(";")
  .filter((s) => s !== "")
  .map((spec) => {
    const [name, rest = ""] = spec.split("=")
    const [migrations = "", own] = rest.split("@")
    const [directory, extra] = migrations.split("+")
    return {
      name: name!,
      directory: directory || undefined,
      extra: extra || undefined,
      script: name === "minimal" ? `${benchDirectory}pgbench/minimal.sql` : (own ?? script)
    }
  })

/** CPU seconds of every process of the private cluster: the postmaster (with its reaped children) and its live children. */
const clusterCpu = (): number | undefined => {
  if (pgdata === undefined) return undefined
  const postmaster = Number(readFileSync(`${pgdata}/postmaster.pid`, "utf8").split("\n")[0])
  const ticks = (pid: number, children: boolean) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      // fields[0] is state (field 3); utime 14, stime 15, cutime 16, cstime 17, ppid 4
      const own = Number(fields[11]) + Number(fields[12])
      return children ? own + Number(fields[13]) + Number(fields[14]) : own
    } catch {
      return 0
    }
  }
  let total = ticks(postmaster, true)
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry)
    if (!Number.isInteger(pid) || pid === postmaster) continue
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
      if (ppid === postmaster) total += ticks(pid, false)
    } catch {
      // gone
    }
  }
  return total / 100
}

const migrated = async (variant: Variant) => {
  if (variant.name === "minimal") {
    const db = await BenchDatabase.create("hotpath_minimal", "empty")
    await db.sql.unsafe(readFileSync(`${benchDirectory}pgbench/minimal-schema.sql`, "utf8"))
    return db
  }
  const db = await BenchDatabase.create(`hotpath_${variant.name}`, "empty")
  await Effect.runPromise(
    Migrator.migrate(variant.directory).pipe(
      Effect.provide(Database.layerUrl(db.url, { maxConnections: 1 })),
      Effect.orDie
    )
  )
  if (variant.extra !== undefined) await db.sql.unsafe(readFileSync(variant.extra, "utf8"))
  return db
}

const databases = new Map<string, BenchDatabase.BenchDatabase>()
for (const variant of variants) databases.set(variant.name, await migrated(variant))

const prepare = async (variant: Variant) => {
  const db = databases.get(variant.name)!
  if (variant.name === "minimal") {
    await db.sql`TRUNCATE minimal_jobs`
    await db.sql.unsafe(
      `INSERT INTO minimal_jobs (payload) SELECT '{}'::jsonb FROM generate_series(1, ${backlog}); ANALYZE minimal_jobs`
    )
  } else {
    await Backlog.reset(db.sql)
    await Backlog.fill(db.sql, backlog)
    await Backlog.analyze(db.sql)
  }
  await db.sql`CHECKPOINT`
  return db
}

interface Sample {
  readonly jobsPerSecond: number
  readonly cpuPerJobUs: number | undefined
  readonly walPerJob: number | undefined
}
const samples = new Map<string, Array<Sample>>()
const key = (variant: string, clients: number) => `${variant}:${clients}`

try {
  for (let round = -warmup; round < rounds; round++) {
    for (const clients of clientLevels) {
      for (let i = 0; i < variants.length; i++) {
        const variant = variants[(i + round + warmup) % variants.length]!
        const db = await prepare(variant)
        const lsn = async () => (await db.sql`SELECT pg_current_wal_lsn()::text AS l`)[0].l as string
        const walBefore = await lsn()
        const cpuBefore = clusterCpu()
        const run = await pgbench(binary, db.url, variant.script, {
          clients,
          seconds,
          variables: { batch: String(batch) }
        })
        // the postmaster adds a backend's CPU to its own children's total once it reaped it
        await Bun.sleep(pgdata === undefined ? 0 : 500)
        const cpuAfter = clusterCpu()
        const walAfter = await lsn()
        const bytes = Number(
          (await db.sql`SELECT pg_wal_lsn_diff(${walAfter}::pg_lsn, ${walBefore}::pg_lsn)::float8 AS b`)[0].b
        )
        const jobs = run.tps * batch * seconds
        const sample: Sample = {
          jobsPerSecond: run.tps * batch,
          cpuPerJobUs:
            cpuBefore === undefined || cpuAfter === undefined
              ? undefined
              : ((cpuAfter - cpuBefore) / jobs) * 1e6,
          walPerJob: pgdata === undefined ? undefined : bytes / jobs
        }
        if (round >= 0)
          samples.set(key(variant.name, clients), [
            ...(samples.get(key(variant.name, clients)) ?? []),
            sample
          ])
        console.log(
          `${round < 0 ? "warm-up" : `round ${round + 1}`} clients ${clients} ${variant.name}: ${Math.round(sample.jobsPerSecond)} jobs/s` +
            (sample.cpuPerJobUs === undefined ? "" : `, ${sample.cpuPerJobUs.toFixed(1)} us CPU/job`) +
            (sample.walPerJob === undefined ? "" : `, ${Math.round(sample.walPerJob)} B WAL/job`)
        )
      }
    }
  }
} finally {
  for (const db of databases.values()) await db.drop()
}

const fmt = (n: number, digits = 0) => n.toFixed(digits)
const range = (values: ReadonlyArray<number>, digits: number) => {
  const s = summarize(values)
  return `${fmt(s.median, digits)} (${fmt(s.min, digits)}-${fmt(s.max, digits)})`
}
console.log(
  `\nbatch ${batch}, ${seconds} s runs, ${rounds} rounds, backlog ${backlog}; ratios paired per round to ${variants[0]!.name}; scripts: ${variants.map((v) => `${v.name} ${v.script.split("/").pop()}`).join(", ")}`
)
console.log("| clients | variant | jobs/s, median (range) | / first, paired | CPU us/job | WAL B/job |")
console.log("|---|---|---|---|---|---|")
for (const clients of clientLevels) {
  const first = samples.get(key(variants[0]!.name, clients))!
  for (const variant of variants) {
    const own = samples.get(key(variant.name, clients))!
    const ratios = own.map((s, i) => s.jobsPerSecond / first[i]!.jobsPerSecond)
    const cpu = own.flatMap((s) => (s.cpuPerJobUs === undefined ? [] : [s.cpuPerJobUs]))
    const wal = own.flatMap((s) => (s.walPerJob === undefined ? [] : [s.walPerJob]))
    console.log(
      `| ${clients} | ${variant.name} | ${range(
        own.map((s) => s.jobsPerSecond),
        0
      )} | ${range(ratios, 2)} | ${cpu.length ? range(cpu, 1) : "-"} | ${wal.length ? range(wal, 0) : "-"} |`
    )
  }
}
