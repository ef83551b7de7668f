/**
 * Each test file gets its own fresh database, cloned from a migrated template (one template per set of
 * migrations, built once and reused), and dropped when the file's tests end.
 *
 * The server comes from TEST_DATABASE_URL (any database on it; we create ours beside it). Where that is
 * unset and a Docker engine answers, testcontainers starts a Postgres; otherwise we stop at once and say how.
 */

import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import { PgClient } from "@effect/sql-pg"
import { Effect, Redacted } from "effect"
import * as Migrator from "../../src/db/Migrator.ts"

let serverUrl: Promise<string> | undefined

const dockerAnswers = () => {
  try {
    execFileSync("docker", ["info"], { stdio: "ignore", timeout: 5000 })
    return true
  } catch {
    return false
  }
}

const startContainer = async () => {
  const { PostgreSqlContainer } = await import("@testcontainers/postgresql")
  const container = await new PostgreSqlContainer("postgres:16-alpine").start()
  return container.getConnectionUri()
}

/** The admin URL of the server the tests use. */
export const testServerUrl = (): Promise<string> => {
  serverUrl ??= (async () => {
    const url = process.env.TEST_DATABASE_URL
    if (url !== undefined && url !== "") return url
    if (dockerAnswers()) return startContainer()
    throw new Error(
      "No test database: set TEST_DATABASE_URL to a Postgres server the tests may create databases on, " +
        "for example TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm test " +
        "(or run a Docker engine, and testcontainers will start one)."
    )
  })()
  return serverUrl
}

export const withDatabase = (url: string, name: string) => {
  const parsed = new URL(url)
  parsed.pathname = `/${name}`
  return parsed.toString()
}

const admin = <A, E>(url: string, f: (sql: PgClient.PgClient) => Effect.Effect<A, E>) =>
  Effect.runPromise(
    Effect.flatMap(PgClient.PgClient, f).pipe(
      // one connection: a session advisory lock and its unlock run on the same backend
      Effect.provide(
        PgClient.layer({ url: Redacted.make(url), maxConnections: 1, applicationName: "jobq-tests" })
      )
    )
  )

const migrationsHash = Effect.map(Migrator.load(), (ms) =>
  createHash("sha256")
    .update(ms.map((m) => `${m.version}:${m.checksum}`).join(","))
    .digest("hex")
    .slice(0, 16)
)

const ensureTemplate = (url: string) =>
  Effect.gen(function* () {
    const template = `jobq_template_${yield* migrationsHash}`
    yield* Effect.promise(() =>
      admin(url, (sql) =>
        Effect.gen(function* () {
          yield* sql`SELECT pg_advisory_lock(hashtext('jobq:test-template'))`
          const exists = yield* sql`SELECT 1 FROM pg_database WHERE datname = ${template}`
          if (exists.length === 0) {
            yield* sql.unsafe(`CREATE DATABASE "${template}_building"`).raw.pipe(Effect.ignore)
            yield* Effect.promise(() =>
              Effect.runPromise(
                Migrator.migrate().pipe(
                  Effect.provide(
                    PgClient.layer({
                      url: Redacted.make(withDatabase(url, `${template}_building`)),
                      maxConnections: 1
                    })
                  ),
                  Effect.orDie
                )
              )
            )
            yield* sql.unsafe(`ALTER DATABASE "${template}_building" RENAME TO "${template}"`).raw
          }
          yield* sql`SELECT pg_advisory_unlock(hashtext('jobq:test-template'))`
        }).pipe(Effect.orDie)
      )
    )
    return template
  })

export interface TestDatabase {
  readonly name: string
  readonly url: string
  readonly drop: () => Promise<void>
}

/** A new empty database (no migrations), for migrator tests. */
export const emptyDatabase = (label: string) => createDatabase(label, undefined)

/** A new, migrated database for one test file. */
export const freshDatabase = (label: string) => createDatabase(label, "template")

const createDatabase = async (label: string, from: "template" | undefined): Promise<TestDatabase> => {
  const url = await testServerUrl()
  const template = from === undefined ? undefined : await Effect.runPromise(ensureTemplate(url))
  const slug = label
    .replace(/^.*\//, "")
    .replace(/\.test\.ts$/, "")
    .replace(/[^a-z0-9]+/gi, "_")
    .toLowerCase()
  const name = `jobq_test_${slug}_${Math.random().toString(36).slice(2, 8)}`
  await admin(url, (sql) =>
    sql
      .unsafe(
        template === undefined
          ? `CREATE DATABASE "${name}"`
          : `CREATE DATABASE "${name}" TEMPLATE "${template}"`
      )
      .raw.pipe(Effect.orDie)
  )
  return {
    name,
    url: withDatabase(url, name),
    drop: () =>
      admin(url, (sql) =>
        sql.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).raw.pipe(Effect.orDie)
      ).then(() => undefined)
  }
}
