/**
 * One process per embedded database directory. PGlite keeps its own copy of the database in memory and
 * writes it back to the directory, so two processes on one directory both report healthy while each
 * overwrites the other's writes: after a restart, one process's jobs are gone. A lock file beside the
 * directory (`<dir>.lock`, created exclusively) names the owner's pid and host; a second process refuses to
 * start and says who holds it. A lock whose pid is dead on this host (its owner was killed) is taken over,
 * with a log line; a lock from another host (a shared folder) cannot be checked and is refused. (Two
 * processes that find the same stale lock in the same instant could both take it over: the file system has
 * no compare-and-delete. A live lock is never taken.)
 */
import { open, readFile, unlink } from "node:fs/promises"
import { hostname } from "node:os"
import { resolve } from "node:path"
import { Effect, Schema } from "effect"

/** Another process holds the lock of an embedded database directory. */
export class DataDirectoryInUse extends Schema.TaggedError<DataDirectoryInUse>()("DataDirectoryInUse", {
  message: Schema.String
}) {}

interface Owner {
  readonly pid: number
  readonly host: string
  readonly since: string
}

/** Whether a process with this pid runs on this host (EPERM: it runs, as another user). */
const running = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as { code?: string }).code === "EPERM"
  }
}

const codeOf = (error: unknown) => (error as { code?: unknown } | null)?.code

/** Creates the lock file with `owner` in it; false when it already exists. */
const create = (path: string, owner: Owner) =>
  Effect.tryPromise(async () => {
    try {
      const file = await open(path, "wx")
      try {
        await file.writeFile(JSON.stringify(owner))
      } finally {
        await file.close()
      }
      return true
    } catch (error) {
      if (codeOf(error) === "EEXIST") return false
      throw error
    }
  })

/** The owner the lock file names; undefined when it is gone, or unreadable (being written, or torn). */
const read = (path: string) =>
  Effect.tryPromise(async (): Promise<Owner | undefined> => {
    try {
      const owner = JSON.parse(await readFile(path, "utf8")) as Partial<Owner>
      return typeof owner.pid === "number" && typeof owner.host === "string"
        ? { pid: owner.pid, host: owner.host, since: String(owner.since) }
        : undefined
    } catch (error) {
      if (codeOf(error) === "ENOENT" || error instanceof SyntaxError) return undefined
      throw error
    }
  })

const remove = (path: string) =>
  Effect.tryPromise(() =>
    unlink(path).catch((error) => (codeOf(error) === "ENOENT" ? undefined : Promise.reject(error)))
  )

/**
 * Holds the lock of `directory` until the scope closes; fails with `DataDirectoryInUse` when a live process
 * holds it. `setting` names the variable that chose the directory, for the message.
 */
export const acquire = (directory: string, setting: string) =>
  Effect.gen(function* () {
    const path = `${resolve(directory)}.lock`
    const me: Owner = { pid: process.pid, host: hostname(), since: new Date().toISOString() }
    for (let tries = 0; ; tries++) {
      if (yield* create(path, me)) break
      const owner = yield* read(path)
      // gone meanwhile, or being written by a process starting right now: look again shortly
      if (owner === undefined && tries < 10) {
        yield* Effect.sleep("50 millis")
        continue
      }
      if (owner === undefined) {
        yield* Effect.logWarning(`taking over the lock ${path}: it names no owner`)
        yield* remove(path)
      } else if (owner.host === me.host && owner.pid !== me.pid && !running(owner.pid)) {
        yield* Effect.logWarning(
          `taking over the lock ${path}: its owner, pid ${owner.pid} (since ${owner.since}), is no longer running`
        )
        yield* remove(path)
      } else {
        const where =
          owner.host === me.host ? "on this host" : `on host ${owner.host}, which this one cannot check`
        return yield* new DataDirectoryInUse({
          message:
            `the data directory ${directory} is in use by another process (pid ${owner.pid} ${where}, since ` +
            `${owner.since}; probably another \`npm start\`): two processes on one embedded database lose each ` +
            `other's jobs. Stop that process, or give this one its own ${setting}, or set DATABASE_URL to use a ` +
            `Postgres server. If no such process runs, delete ${path}.`
        })
      }
    }
    yield* Effect.addFinalizer(() =>
      read(path).pipe(
        Effect.flatMap((owner) =>
          owner !== undefined && owner.pid === me.pid && owner.host === me.host ? remove(path) : Effect.void
        ),
        Effect.ignore
      )
    )
  }).pipe(Effect.annotateLogs({ module: "DirectoryLock" }))
