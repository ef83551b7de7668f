/**
 * Faults the chaos scenarios inject into the database server: stop and start it, terminate the sessions
 * of given applications, hold a transaction open. Everything is bounded.
 *
 * Stopping a server stops everyone on it, and this machine's cluster is shared (benchmarks, other suites),
 * so postgres_restart runs on a cluster of its own: `privateCluster` creates one with pg_createcluster on a
 * free port (trust auth on 127.0.0.1), migrates a database on it, and drops it when done. Its stop/start is
 * the real thing (pg_ctlcluster: a fast shutdown, or an immediate one, which is a crash: no checkpoint, and
 * WAL not yet flushed is gone), and it is always started again in a `finally`.
 */
import { existsSync, readdirSync } from "node:fs"
import { PgClient } from "@effect/sql-pg"
import type { SQL } from "bun"
import { Effect, Redacted } from "effect"
import * as Migrator from "../../src/db/Migrator.ts"
import type { TestDatabase } from "../support/database.ts"
import { freePort } from "../support/ports.ts"

const version = () => {
  const versions = existsSync("/etc/postgresql") ? readdirSync("/etc/postgresql") : []
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0]
  if (newest === undefined) {
    throw new Error(
      "postgres_restart needs PostgreSQL's Debian cluster tools (pg_createcluster, pg_ctlcluster)"
    )
  }
  return newest
}

const run = (args: ReadonlyArray<string>, allowed: ReadonlyArray<number> = [0]) => {
  const result = Bun.spawnSync([...args], { stdout: "pipe", stderr: "pipe", timeout: 120_000 })
  if (!allowed.includes(result.exitCode ?? -1)) {
    throw new Error(`${args.join(" ")} exited ${result.exitCode}: ${result.stderr.toString()}`)
  }
}

const serverAnswers = (url: string) =>
  Bun.spawnSync(["pg_isready", "-d", url, "-t", "2"], { timeout: 5_000 }).exitCode === 0

const clusterPrefix = "jobq_chaos_"

/** Drops clusters left by runs whose process is gone (a killed test run cannot clean up after itself). */
const dropStale = (v: string) => {
  const dir = `/etc/postgresql/${v}`
  for (const name of existsSync(dir) ? readdirSync(dir) : []) {
    if (!name.startsWith(clusterPrefix)) continue
    const pid = Number(name.slice(clusterPrefix.length))
    const alive = Number.isInteger(pid) && existsSync(`/proc/${pid}`)
    if (!alive) run(["pg_dropcluster", v, name, "--stop"], [0, 1])
  }
}

export interface PrivateCluster {
  readonly database: TestDatabase
  /** Stops the server (fast mode, or immediate: a crash), runs `whileDown`, starts it again in a `finally`;
   *  answers the downtime. */
  readonly withServerStopped: <A>(
    whileDown: () => Promise<A>,
    mode?: "fast" | "immediate"
  ) => Promise<{ downMs: number; value: A }>
}

/** A cluster of this process's own on a free port, with a migrated database; dropped by `database.drop`. */
export const privateCluster = async (): Promise<PrivateCluster> => {
  const v = version()
  dropStale(v)
  const name = `${clusterPrefix}${process.pid}`
  const port = freePort()
  run([
    "pg_createcluster",
    v,
    name,
    "-p",
    String(port),
    "--start",
    "--",
    "--auth-host=trust",
    "--auth-local=trust"
  ])
  const url = `postgres://postgres@127.0.0.1:${port}/jobq_chaos`
  const admin = `postgres://postgres@127.0.0.1:${port}/postgres`
  run(["psql", admin, "-qc", "CREATE DATABASE jobq_chaos"])
  await Effect.runPromise(
    Migrator.migrate().pipe(
      Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 })),
      Effect.orDie
    )
  )
  const pgctl = (action: "start" | "stop", mode: "fast" | "immediate" = "fast") =>
    run(
      [
        "pg_ctlcluster",
        "--skip-systemctl-redirect",
        v,
        name,
        action,
        ...(action === "stop" ? ["--mode", mode] : [])
      ],
      // starting a running cluster exits 2: that is the state we want
      action === "start" ? [0, 2] : [0]
    )
  const startAgain = async () => {
    for (let round = 0; ; round++) {
      try {
        pgctl("start")
        break
      } catch (error) {
        if (round >= 5) throw error
        await Bun.sleep(500)
      }
    }
    const deadline = Date.now() + 60_000
    while (!serverAnswers(url)) {
      if (Date.now() > deadline) throw new Error("the database server did not come back within 60 s")
      await Bun.sleep(100)
    }
  }
  return {
    database: {
      name: "jobq_chaos",
      url,
      drop: async () => run(["pg_dropcluster", v, name, "--stop"])
    },
    withServerStopped: async (whileDown, mode = "fast") => {
      const began = Date.now()
      pgctl("stop", mode)
      let value: Awaited<ReturnType<typeof whileDown>>
      try {
        value = await whileDown()
      } finally {
        await startAgain()
      }
      return { downMs: Date.now() - began, value }
    }
  }
}

/** Terminates every session of `database` whose application_name is one of `applications`; answers how many. */
export const terminateBackends = async (
  admin: SQL,
  database: string,
  applications: ReadonlyArray<string>
): Promise<number> => {
  const rows = await admin`
    SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
    WHERE datname = ${database} AND application_name = ANY(${applications}::text[]) AND pid <> pg_backend_pid()`
  return rows.filter((r: { done: boolean }) => r.done).length
}

/** Dead tuples of `jobs` as the statistics collector last counted them (flushed first). */
export const deadTuples = async (pg: SQL) => {
  await pg`SELECT pg_stat_force_next_flush()`.catch(() => undefined)
  const [row] = await pg`
    SELECT n_dead_tup::int AS dead, n_live_tup::int AS live FROM pg_stat_user_tables WHERE relname = 'jobs'`
  return { dead: (row?.dead ?? 0) as number, live: (row?.live ?? 0) as number }
}
