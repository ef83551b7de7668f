/**
 * Each benchmark gets its own database on the local server: created, migrated with the project's
 * migrator (or left empty for a peer, which installs its own schema), and dropped afterwards.
 */
import { SQL } from "bun"
import { Effect } from "effect"
import * as Database from "../src/db/Database.ts"
import * as Migrator from "../src/db/Migrator.ts"
import { probeApplicationName } from "./ProcessCpu.ts"

export const serverUrl = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"

const withDatabase = (name: string, server = serverUrl) => {
  const url = new URL(server)
  if (url.hostname !== "127.0.0.1" && url.hostname !== "localhost") {
    throw new Error(`benchmarks only target the local server (127.0.0.1), not ${url.hostname}`)
  }
  url.pathname = `/${name}`
  return url.toString()
}

export interface BenchDatabase {
  readonly name: string
  readonly url: string
  /**
   * A small pool for the harness itself (backlogs, polling, timestamps), named `bench-probe` so that the
   * CPU of the database's backends (ProcessCpu.ts) leaves it out.
   */
  readonly sql: SQL
  readonly drop: () => Promise<void>
}

export const admin = (server = serverUrl) =>
  new SQL(withDatabase(new URL(server).pathname.slice(1) || "postgres", server))

/** `server`: another local server than BENCH_DATABASE_URL's (a private cluster, bench/PrivateCluster.ts). */
export const create = async (
  label: string,
  schema: "jobq" | "empty" = "jobq",
  server = serverUrl
): Promise<BenchDatabase> => {
  const name = `jobq_bench_${label}_${Math.random().toString(36).slice(2, 8)}`
  const adminSql = admin(server)
  await adminSql.unsafe(`CREATE DATABASE "${name}"`)
  await adminSql.close()
  const url = withDatabase(name, server)
  if (schema === "jobq") {
    await Effect.runPromise(
      Migrator.migrate().pipe(Effect.provide(Database.layerUrl(url, { maxConnections: 1 })), Effect.orDie)
    )
  }
  const sql = new SQL({ url, max: 4, connection: { application_name: probeApplicationName } })
  return {
    name,
    url,
    sql,
    drop: async () => {
      await sql.close()
      const again = admin(server)
      await again.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
      await again.close()
    }
  }
}

/** Runs `body` with a fresh database and drops it whatever happens. */
export const using = async <A>(
  label: string,
  body: (db: BenchDatabase) => Promise<A>,
  schema: "jobq" | "empty" = "jobq"
): Promise<A> => {
  const db = await create(label, schema)
  try {
    return await body(db)
  } finally {
    await db.drop()
  }
}
