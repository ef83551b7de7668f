/**
 * The migration runner: applies `migrations/` in order, records each with a checksum, is a no-op the second
 * time, is safe with two runners at once, refuses edited or badly named files, and as a CLI exits non-zero
 * with a clear message. Each test works on its own empty database.
 */
import { afterAll, describe, expect, it } from "bun:test"
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { PgClient } from "@effect/sql-pg"
import { Effect, Redacted } from "effect"
import * as Migrator from "../src/db/Migrator.ts"
import { emptyDatabase, type TestDatabase } from "./support/database.ts"

const repoRoot = fileURLToPath(new URL("..", import.meta.url))

const cleanups: Array<() => Promise<void>> = []
afterAll(async () => {
  await Promise.all(cleanups.map((cleanup) => cleanup()))
}, 30_000)

const database = async (): Promise<TestDatabase> => {
  const db = await emptyDatabase(import.meta.file)
  cleanups.push(db.drop)
  return db
}

/** A copy of migrations/ we may edit. */
const migrationsCopy = async () => {
  const dir = await mkdtemp(join(tmpdir(), "jobq-migrations-"))
  await cp(Migrator.defaultDirectory(), dir, { recursive: true })
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  return dir
}

const pool = (url: string) => PgClient.layer({ url: Redacted.make(url), maxConnections: 2 })

const migrate = (url: string, directory?: string) =>
  Effect.runPromise(Migrator.migrate(directory).pipe(Effect.provide(pool(url))))
const migrateError = (url: string, directory?: string) =>
  Effect.runPromise(Effect.flip(Migrator.migrate(directory)).pipe(Effect.provide(pool(url))))

const query = <A extends object>(url: string, text: string) =>
  Effect.runPromise(
    Effect.flatMap(PgClient.PgClient, (sql) => sql.unsafe<A>(text)).pipe(Effect.provide(pool(url)))
  )

const tables = (url: string) =>
  query<{ name: string }>(
    url,
    "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
  ).then((rows) => rows.map((r) => r.name))

/** A fingerprint of the schema: columns, indexes, functions and triggers. */
const schemaOf = (url: string) =>
  Promise.all([
    query(
      url,
      `SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns
       WHERE table_schema = 'public' ORDER BY table_name, column_name`
    ),
    query(url, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"),
    query(
      url,
      `SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       WHERE n.nspname = 'public' ORDER BY 1`
    ),
    query(url, "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1")
  ])

/** The messages of an error and every cause under it. */
const messagesOf = (error: unknown): Array<string> => {
  const out: Array<string> = []
  for (let e: any = error, depth = 0; e !== undefined && e !== null && depth < 10; e = e.cause, depth++) {
    if (typeof e.message === "string") out.push(e.message)
  }
  return out
}

const migrationRows = (url: string) =>
  query<{ version: number; name: string; checksum: string }>(
    url,
    "SELECT version, name, checksum FROM jobq_migrations ORDER BY version"
  )

describe("Migrator", () => {
  it("on an empty database creates the schema and records every migration", async () => {
    const db = await database()
    const available = await Effect.runPromise(Migrator.load())
    expect(available.length).toBeGreaterThanOrEqual(1)
    expect(available[0]).toMatchObject({ version: 1, name: "jobs" })

    const result = await migrate(db.url)
    expect(result.applied.map((m) => m.version)).toEqual(available.map((m) => m.version))
    expect(result.alreadyApplied).toBe(0)
    expect(await tables(db.url)).toEqual(expect.arrayContaining(["jobq_migrations", "jobs"]))
    expect(await migrationRows(db.url)).toEqual(
      available.map(({ version, name, checksum }) => ({ version, name, checksum }))
    )
    // the schema works: insert a job with every default
    const [job] = await query<{ status: string; attempts: number; id: string }>(
      db.url,
      `INSERT INTO jobs (kind, payload) VALUES ('noop', '{}') RETURNING status, attempts, id::text`
    )
    expect(job).toMatchObject({ status: "queued", attempts: 0 })
  })

  it("a second run is a no-op that changes nothing", async () => {
    const db = await database()
    await migrate(db.url)
    const before = await schemaOf(db.url)
    const rows = await migrationRows(db.url)
    const again = await migrate(db.url)
    expect(again.applied).toEqual([])
    expect(again.alreadyApplied).toBe(rows.length)
    expect(await schemaOf(db.url)).toEqual(before)
    expect(await migrationRows(db.url)).toEqual(rows)
  })

  it("two runners starting at once on an empty database leave one consistent schema", async () => {
    const db = await database()
    const reference = await database()
    await migrate(reference.url)

    const runner = (name: string) =>
      Migrator.migrate().pipe(
        Effect.provide(
          PgClient.layer({ url: Redacted.make(db.url), maxConnections: 1, applicationName: name })
        )
      )
    const [a, b] = await Effect.runPromise(
      Effect.all([runner("runner-a"), runner("runner-b")], { concurrency: 2 })
    )
    const available = await Effect.runPromise(Migrator.load())
    // exactly one of them applied everything; the other found it done
    expect([a.applied.length, b.applied.length].sort()).toEqual([0, available.length])
    expect([a.alreadyApplied, b.alreadyApplied].sort()).toEqual([0, available.length])
    expect(await migrationRows(db.url)).toEqual(await migrationRows(reference.url))
    expect(await schemaOf(db.url)).toEqual(await schemaOf(reference.url))
  })

  it("applies a new migration added later, and only that one", async () => {
    const db = await database()
    const dir = await migrationsCopy()
    await migrate(db.url, dir)
    await writeFile(
      join(dir, "9001_extra.sql"),
      "CREATE TABLE extra (id int PRIMARY KEY);\nCREATE INDEX extra_idx ON extra (id);\n"
    )
    const result = await migrate(db.url, dir)
    expect(result.applied.map((m) => `${m.version}_${m.name}`)).toEqual(["9001_extra"])
    expect(await tables(db.url)).toContain("extra")
    expect((await migrationRows(db.url)).at(-1)).toMatchObject({ version: 9001, name: "extra" })
  })

  it("an edited migration stops the run with a MigrationError naming it", async () => {
    const db = await database()
    const dir = await migrationsCopy()
    await migrate(db.url, dir)
    const file = join(dir, "0001_jobs.sql")
    await writeFile(file, `${await readFile(file, "utf8")}\n-- an innocent-looking edit\n`)
    await writeFile(join(dir, "9002_later.sql"), "CREATE TABLE later (id int);")
    const error = await migrateError(db.url, dir)
    expect(error._tag).toBe("MigrationError")
    expect(error.message).toContain("0001_jobs.sql")
    expect(error.message).toContain("edited")
    // nothing after it was applied either
    expect(await tables(db.url)).not.toContain("later")
  })

  it("a failing migration names the file and rolls back entirely", async () => {
    const db = await database()
    const dir = await migrationsCopy()
    await writeFile(
      join(dir, "9003_broken.sql"),
      "CREATE TABLE half_done (id int);\nALTER TABLE no_such_table ADD COLUMN x int;\n"
    )
    const error = await migrateError(db.url, dir)
    expect(error._tag).toBe("MigrationError")
    expect(error.message).toContain("9003_broken.sql")
    // the database's own words, in the message and in the cause chain
    expect(error.message).toContain('relation "no_such_table" does not exist')
    expect(messagesOf(error).join(" | ")).toContain('relation "no_such_table" does not exist')
    // one transaction: not even the earlier, good migrations stayed
    expect(await tables(db.url)).toEqual([])
  })

  it("a badly named file fails clearly before touching the database", async () => {
    const db = await database()
    for (const bad of ["add_column.sql", "0002-dash.sql", "0002_two words.sql"]) {
      const dir = await migrationsCopy()
      await writeFile(join(dir, bad), "SELECT 1;")
      const error = await migrateError(db.url, dir)
      expect(error._tag).toBe("MigrationError")
      expect(error.message).toContain(bad)
      expect(error.message).toContain("NNNN_name.sql")
    }
    const dir = await migrationsCopy()
    await writeFile(join(dir, "01_duplicate.sql"), "SELECT 1;")
    expect((await migrateError(db.url, dir)).message).toContain("share a version")
    expect(await tables(db.url)).toEqual([])
  })
})

/** Jobs in every state, a flow among them (a finished dependency, a dependent it queued, one still blocked). */
const populate = async (url: string) => {
  await query(
    url,
    `WITH flow AS (INSERT INTO flows (id, job_count) VALUES ('00000000-0000-7000-8000-00000000f100', 4) RETURNING id)
     INSERT INTO jobs (id, queue, kind, payload, status, attempts, lease_owner, lease_expires_at, result,
                       finished_at, flow_id, flow_name, pending_deps, last_error)
     SELECT x.id::uuid, 'q', 'k', '{"n": 1}', x.status, x.attempts,
            CASE WHEN x.status = 'running' THEN 'w' END,
            CASE WHEN x.status = 'running' THEN now() + interval '1 minute' END,
            x.result::jsonb,
            CASE WHEN x.status IN ('succeeded', 'failed_permanent', 'cancelled') THEN now() END,
            CASE WHEN x.flow_name IS NOT NULL THEN (SELECT id FROM flow) END, x.flow_name, x.pending_deps,
            CASE WHEN x.status IN ('retrying', 'failed_permanent') THEN 'boom' END
     FROM (VALUES
       ('00000000-0000-7000-8000-000000000001', 'queued', 0, NULL, NULL, 0),
       ('00000000-0000-7000-8000-000000000002', 'running', 1, NULL, NULL, 0),
       ('00000000-0000-7000-8000-000000000003', 'succeeded', 1, '{"ok": true}', NULL, 0),
       ('00000000-0000-7000-8000-000000000004', 'retrying', 1, NULL, NULL, 0),
       ('00000000-0000-7000-8000-000000000005', 'failed_permanent', 5, NULL, NULL, 0),
       ('00000000-0000-7000-8000-000000000006', 'cancelled', 0, NULL, NULL, 0),
       ('00000000-0000-7000-8000-0000000000f1', 'succeeded', 1, '{"x": 1}', 'parent', 0),
       ('00000000-0000-7000-8000-0000000000f2', 'queued', 0, NULL, 'child', 0),
       ('00000000-0000-7000-8000-0000000000f3', 'running', 1, NULL, 'other', 0),
       ('00000000-0000-7000-8000-0000000000f4', 'blocked', 0, NULL, 'waiting', 1)
     ) AS x (id, status, attempts, result, flow_name, pending_deps)`
  )
  await query(
    url,
    `INSERT INTO job_deps (depends_on, job_id, satisfied) VALUES
       ('00000000-0000-7000-8000-0000000000f1', '00000000-0000-7000-8000-0000000000f2', true),
       ('00000000-0000-7000-8000-0000000000f3', '00000000-0000-7000-8000-0000000000f4', false)`
  )
}

const everyJob = (url: string) => query(url, "SELECT * FROM jobs ORDER BY id")

describe("upgrading a populated database", () => {
  it("the newest migration applies to a database holding jobs in every state and changes none of them", async () => {
    const db = await database()
    const available = await Effect.runPromise(Migrator.load())
    const newest = available[available.length - 1]!
    const older = await migrationsCopy()
    await rm(join(older, newest.file))
    await migrate(db.url, older)
    await populate(db.url)
    const before = await everyJob(db.url)
    expect(new Set(before.map((job: any) => job.status))).toEqual(
      new Set(["queued", "running", "succeeded", "retrying", "failed_permanent", "cancelled", "blocked"])
    )

    const result = await migrate(db.url)
    expect(result.applied.map((m) => m.file)).toEqual([newest.file])
    expect(await everyJob(db.url)).toEqual(before)
    // what the claims read for a flow job (migration 0014): its dependencies' results by name
    const [parents] = await query<{ queued: unknown; outside: unknown }>(
      db.url,
      `SELECT jobq_job_parents('00000000-0000-7000-8000-0000000000f2') AS queued,
              jobq_job_parents('00000000-0000-7000-8000-000000000001') AS outside`
    )
    expect(parents).toEqual({ queued: { parent: { x: 1 } }, outside: null })
  })
})

/** `bun run src/migrate.ts` with DATABASE_URL set; returns the exit code and everything it printed. */
const migrateCli = async (env: Record<string, string | undefined>) => {
  const child = Bun.spawn([process.execPath, "run", "src/migrate.ts"], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdout: "pipe",
    stderr: "pipe"
  })
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited
  ])
  return { code, stderr, output: `${stdout}\n${stderr}` }
}

describe("bun run migrate", () => {
  it("creates the schema and exits 0; a second run says the schema is up to date", async () => {
    const db = await database()
    const first = await migrateCli({ DATABASE_URL: db.url })
    expect(first.code).toBe(0)
    expect(first.output).toContain("applied 0001_jobs.sql")
    expect(await tables(db.url)).toEqual(expect.arrayContaining(["jobq_migrations", "jobs"]))
    const second = await migrateCli({ DATABASE_URL: db.url })
    expect(second.code).toBe(0)
    expect(second.output).toContain("up to date")
  })

  it("exits non-zero with a clear message when the database cannot be reached", async () => {
    const closed = await migrateCli({
      DATABASE_URL: "postgres://postgres@127.0.0.1:1/nowhere",
      DATABASE_CONNECT_TIMEOUT: "3 seconds"
    })
    expect(closed.code).not.toBe(0)
    // one line on stderr, with the reason the driver gave
    expect(closed.stderr.trim().split("\n")).toEqual([expect.stringContaining("migration run failed")])
    expect(closed.stderr).toContain("ECONNREFUSED 127.0.0.1:1")
  })

  it("exits non-zero naming DATABASE_URL when it is not set", async () => {
    const unset = await migrateCli({ DATABASE_URL: undefined })
    expect(unset.code).not.toBe(0)
    expect(unset.stderr).toContain("DATABASE_URL")
  })
})
