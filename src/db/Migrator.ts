/**
 * Applies `migrations/NNNN_name.sql` in order, in one transaction, under an advisory lock so that two
 * runners starting together apply each file once. Applied files are recorded with a checksum; a file
 * edited after it was applied stops the run instead of leaving the schema in an unknown state.
 */
import { Effect, Schema } from "effect"
import { SqlClient } from "effect/sql"

/**
 * The package's `migrations/` folder, two levels above this module (`src/db/` in the sources,
 * `dist/db/` in the package). Resolved when a run asks for it, never at import time: a runtime without
 * a file system (an edge host) can load this module, and the API never calls it.
 */
export const defaultDirectory = (): string => {
  const url = new URL("../../migrations", import.meta.url)
  if (url.protocol !== "file:") {
    throw new Error(
      `the migrations are not on a local file system (${url.href}): pass their folder to migrate()`
    )
  }
  return decodeURIComponent(url.pathname)
}

const sha256Hex = async (text: string) =>
  Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))), (byte) =>
    byte.toString(16).padStart(2, "0")
  ).join("")

export class MigrationError extends Schema.TaggedError<MigrationError>()("MigrationError", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

export interface Migration {
  readonly version: number
  readonly name: string
  /** The file it came from, e.g. `0001_jobs.sql`. */
  readonly file: string
  readonly sql: string
  readonly checksum: string
}

const fileName = /^(\d+)_([\w-]+)\.sql$/

/** The innermost message of an error's cause chain: for a failed statement, what Postgres said. */
export const rootMessage = (error: unknown): string => {
  let current: unknown = error
  let message = error instanceof Error ? error.message : String(error)
  for (let depth = 0; depth < 10 && current !== null && typeof current === "object"; depth++) {
    const own = (current as { message?: unknown }).message
    if (typeof own === "string" && own !== "") message = own
    current =
      (current as { cause?: unknown; reason?: unknown }).cause ?? (current as { reason?: unknown }).reason
  }
  return message
}

export const load = (directory?: string) =>
  Effect.tryPromise({
    try: async () => {
      directory ??= defaultDirectory()
      // node:fs is loaded by a run, not by an import of this module (see defaultDirectory)
      const { readdir, readFile } = await import("node:fs/promises")
      const files = (await readdir(directory)).filter((f) => f.endsWith(".sql")).sort()
      const migrations: Array<Migration> = []
      for (const file of files) {
        const match = fileName.exec(file)
        if (!match) throw new Error(`migration file "${file}" is not named NNNN_name.sql`)
        const sql = await readFile(`${directory}/${file}`, "utf8")
        migrations.push({
          version: Number(match[1]),
          name: match[2]!,
          file,
          sql,
          checksum: await sha256Hex(sql)
        })
      }
      const versions = new Set(migrations.map((m) => m.version))
      if (versions.size !== migrations.length) throw new Error(`two migration files share a version number`)
      return migrations
    },
    catch: (cause) =>
      new MigrationError({
        message: `cannot read migrations from ${directory ?? "the package's migrations folder"}: ${String(cause)}`,
        cause
      })
  })

// A dollar-quote tag no migration uses: lets a whole multi-statement file run as one extended-protocol query.
const wrap = (sql: string) => {
  if (sql.includes("$jobq_migration$")) throw new Error("a migration may not contain $jobq_migration$")
  return `DO $jobq_do$ BEGIN EXECUTE $jobq_migration$${sql}$jobq_migration$; END $jobq_do$`
}

export interface MigrationResult {
  readonly applied: ReadonlyArray<Migration>
  readonly alreadyApplied: number
}

export const migrate = (directory?: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const migrations = yield* load(directory)
    return yield* sql
      .withTransaction(
        Effect.gen(function* () {
          yield* sql`SELECT pg_advisory_xact_lock(hashtext('jobq:migrate'))`
          yield* sql`CREATE TABLE IF NOT EXISTS jobq_migrations (
            version    integer     PRIMARY KEY,
            name       text        NOT NULL,
            checksum   text        NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
          )`
          const done = yield* sql<{ version: number; checksum: string }>`
            SELECT version, checksum FROM jobq_migrations ORDER BY version`
          const known = new Map(done.map((row) => [row.version, row.checksum]))
          const applied: Array<Migration> = []
          for (const migration of migrations) {
            const checksum = known.get(migration.version)
            if (checksum !== undefined) {
              if (checksum !== migration.checksum) {
                return yield* new MigrationError({
                  message: `migration ${migration.file} was edited after it was applied (checksum differs); add a new migration instead`
                })
              }
              continue
            }
            yield* sql.unsafe(wrap(migration.sql)).raw.pipe(
              Effect.mapError(
                (cause) =>
                  new MigrationError({
                    message: `migration ${migration.file} failed: ${rootMessage(cause)}`,
                    cause
                  })
              )
            )
            yield* sql`INSERT INTO jobq_migrations (version, name, checksum)
              VALUES (${migration.version}, ${migration.name}, ${migration.checksum})`
            applied.push(migration)
          }
          return { applied, alreadyApplied: known.size } satisfies MigrationResult
        })
      )
      .pipe(
        Effect.catchTag("SqlError", (cause) =>
          Effect.fail(new MigrationError({ message: `migration run failed: ${rootMessage(cause)}`, cause }))
        )
      )
  }).pipe(Effect.withSpan("Migrator.migrate"))
