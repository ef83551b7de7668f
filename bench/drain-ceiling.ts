/**
 * The drain's ceiling on this machine: our own claim and completion statements, as the worker sends them,
 * run by pgbench with no application at all, draining the same backlog the drain scenario uses, beside
 * graphile-worker's whole system (its Node worker included) and our worker's, in turn within each round. If
 * our statements alone drain slower than graphile-worker's whole system, no worker of ours can reach it on
 * this machine with those statements.
 *
 * The scripts are made from bench/pgbench/worker-cycle.sql without its insert: its claim of 500 (each
 * statement its own transaction), then its completion keeping rows, or bench/pgbench/complete-deleting.sql.
 * One difference from the worker: for pgbench's `\gset` the claimed rows come back folded into one array, so
 * the columns the worker reads are not sent row by row (the ceiling leaves that output cost out).
 *
 * pgbench: `-t` cycles per client so that the clients together claim the backlog once; 1, 2 and 4 clients
 * (CEILING_CLIENTS); jobs/s = the tps pgbench reports (connection time excluded) × 500.
 * Run: `bun bench/drain-ceiling.ts` (CEILING_ROUNDS, default 3; CEILING_BACKLOG, default 20,000;
 * CEILING_CONCURRENCY, the workers' concurrency, default 8). Prints one JSON line per measurement.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Backlog from "./Backlog.ts"
import * as BenchDatabase from "./BenchDatabase.ts"
import { benchDirectory } from "./BenchDependencies.ts"
import * as OurDrain from "./scenarios/OurDrain.ts"
import * as PeerDrain from "./scenarios/PeerDrain.ts"
import { findPgbench, pgbench } from "./scenarios/Pgbench.ts"

const rounds = Number(process.env.CEILING_ROUNDS ?? 3)
const backlog = Number(process.env.CEILING_BACKLOG ?? 20_000)
const concurrency = Number(process.env.CEILING_CONCURRENCY ?? 8)
const clientCounts = (process.env.CEILING_CLIENTS ?? "1,2,4").split(",").map(Number)
const batch = 500
// worker-cycle.sql: the insert, the claim (up to its `\gset`), the completion keeping rows
const cycle = readFileSync(`${benchDirectory}pgbench/worker-cycle.sql`, "utf8")
const claimEnd = cycle.indexOf("\\gset") + "\\gset".length
const claim = cycle.slice(cycle.indexOf("WITH ready AS"), claimEnd)
const scriptDirectory = mkdtempSync(`${tmpdir()}/drain-ceiling-`)
const scripts = {
  kept: `${claim}${cycle.slice(claimEnd)}`,
  deleting: `${claim}\n${readFileSync(`${benchDirectory}pgbench/complete-deleting.sql`, "utf8")}`
}
const scriptFile = (mode: keyof typeof scripts) => {
  const file = `${scriptDirectory}/drain-${mode}.sql`
  writeFileSync(file, scripts[mode])
  return file
}
const found = await findPgbench()
if (found === undefined) throw new Error("pgbench not found (Debian: postgresql-client)")
const graphile = PeerDrain.peers.find((p) => p.name.startsWith("graphile-worker"))!
const admin = BenchDatabase.admin()
const load = async () => (await Bun.file("/proc/loadavg").text()).split(" ").slice(0, 3).join(" ")
console.log(JSON.stringify({ pgbench: found.version, backlog, loadAtStart: await load() }))
await BenchDatabase.using("drainceiling", async (db) => {
  for (let round = 0; round < rounds; round++) {
    for (const mode of ["kept", "deleting"] as const) {
      for (const clients of clientCounts) {
        await Backlog.reset(db.sql)
        await Backlog.fill(db.sql, backlog)
        await Backlog.analyze(db.sql)
        const run = await pgbench(found.path, db.url, scriptFile(mode), {
          clients,
          seconds: 0,
          transactions: Math.floor(backlog / (batch * clients)),
          variables: { batch: String(batch) }
        })
        const [left] = await db.sql`SELECT count(*)::int AS n FROM jobs WHERE status IN ('queued', 'running')`
        console.log(
          JSON.stringify({
            round,
            system: `pgbench, our statements, ${mode}`,
            clients,
            jobsPerSecond: Math.round(run.tps * batch),
            unfinished: left.n
          })
        )
      }
      const ours = await OurDrain.run(
        db,
        { backlog, concurrency, processes: 1, defaultPrefetch: true, deleteSucceeded: mode === "deleting" },
        `drainceiling-${round}-${mode}`
      )
      console.log(
        JSON.stringify({
          round,
          system: `ours, defaults, ${mode}`,
          concurrency,
          jobsPerSecond: Math.round(ours.jobsPerSecond)
        })
      )
    }
    const theirs = await PeerDrain.run(graphile, db, admin, {}, { concurrency, backlog })
    console.log(
      JSON.stringify({
        round,
        system: graphile.name,
        concurrency,
        jobsPerSecond: Math.round(theirs.jobsPerSecond)
      })
    )
  }
})
await admin.close()
rmSync(scriptDirectory, { recursive: true, force: true })
console.log(JSON.stringify({ loadAtEnd: await load() }))
process.exit(0)
