/**
 * A Postgres cluster of the benchmark's own, for measurements that need server settings the shared server
 * does not have (it runs with autovacuum off): `initdb` in a temporary directory, `pg_ctl start` on a free
 * port of 127.0.0.1 (trust auth, its socket in that directory), initdb's defaults for everything else
 * unless `settings` says otherwise; `stop` shuts it down and removes the directory. As root, the binaries
 * run as the `postgres` user (initdb refuses root). A cluster left behind by a killed run (its directory
 * names a pid that is gone) is stopped and removed by the next start.
 */
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { freePort } from "./FreePort.ts"

const binaryDirectories = [
  "/usr/lib/postgresql/17/bin",
  "/usr/lib/postgresql/16/bin",
  "/usr/lib/postgresql/15/bin"
]

export const binary = (name: string) => {
  for (const directory of binaryDirectories) {
    if (existsSync(`${directory}/${name}`)) return `${directory}/${name}`
  }
  return name // on the PATH, or the spawn fails with a clear "not found"
}

const asRoot = process.getuid?.() === 0

/** The owner the cluster's files need: the `postgres` user when we are root, ourselves otherwise. */
export const owner = () => {
  if (!asRoot) return undefined
  const uid = Bun.spawnSync(["id", "-u", "postgres"], { stdout: "pipe" })
  const gid = Bun.spawnSync(["id", "-g", "postgres"], { stdout: "pipe" })
  if (uid.exitCode !== 0) throw new Error("running as root needs a `postgres` user to own the cluster")
  return { uid: Number(uid.stdout.toString()), gid: Number(gid.stdout.toString()) }
}

/** Runs a Postgres binary as the cluster's owner (see `owner`); `stdin`, when given, is its input. */
export const run = (args: ReadonlyArray<string>, stdin?: string, timeoutMs = 120_000) => {
  const command = asRoot ? ["runuser", "-u", "postgres", "--", ...args] : [...args]
  const result = Bun.spawnSync(command, {
    stdout: "pipe",
    stderr: "pipe",
    timeout: timeoutMs,
    ...(stdin === undefined ? {} : { stdin: new TextEncoder().encode(stdin) })
  })
  if (result.exitCode !== 0) {
    throw new Error(`${args.join(" ")} exited ${result.exitCode}: ${result.stderr.toString()}`)
  }
  return result
}

const prefix = "jobq-cluster-"

const stopAndRemove = (directory: string) => {
  if (existsSync(`${directory}/data/postmaster.pid`)) {
    try {
      run([binary("pg_ctl"), "-D", `${directory}/data`, "-m", "fast", "-w", "stop"])
    } catch {
      // not running after all
    }
  }
  rmSync(directory, { recursive: true, force: true })
}

/** Stops and removes the clusters of runs whose process is gone. */
const removeStale = () => {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(prefix)) continue
    const pid = Number(name.slice(prefix.length).split("-")[0])
    if (Number.isInteger(pid) && !existsSync(`/proc/${pid}`)) stopAndRemove(`${tmpdir()}/${name}`)
  }
}

export interface PrivateCluster {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly adminUrl: string
  readonly port: number
  /** The server's log (it also holds autovacuum's lines when `log_autovacuum_min_duration` is set). */
  readonly logFile: string
  /** The postmaster's pid (every backend is its child). */
  readonly pid: number
  /** The cluster's data directory. */
  readonly data: string
  /** Shuts the server down and keeps its files (`stop` still removes them). */
  readonly shutDown: () => void
  readonly stop: () => void
}

export const start = (settings: Readonly<Record<string, string>> = {}): PrivateCluster => {
  removeStale()
  const directory = mkdtempSync(`${tmpdir()}/${prefix}${process.pid}-`)
  const ids = owner()
  if (ids !== undefined) chownSync(directory, ids.uid, ids.gid)
  const data = `${directory}/data`
  const logFile = `${directory}/server.log`
  const port = freePort()
  try {
    run([binary("initdb"), "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"])
    const options = [
      `-p ${port}`,
      "-c listen_addresses=127.0.0.1",
      `-c unix_socket_directories=${directory}`,
      ...Object.entries(settings).map(([name, value]) => `-c ${name}=${value}`)
    ].join(" ")
    run([binary("pg_ctl"), "-D", data, "-l", logFile, "-o", options, "-w", "-t", "60", "start"])
  } catch (error) {
    stopAndRemove(directory)
    throw error
  }
  let stopped = false
  return {
    adminUrl: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    logFile,
    pid: Number(readFileSync(`${data}/postmaster.pid`, "utf8").split("\n")[0]),
    data,
    shutDown: () => {
      run([binary("pg_ctl"), "-D", data, "-m", "fast", "-w", "stop"])
    },
    stop: () => {
      if (stopped) return
      stopped = true
      stopAndRemove(directory)
    }
  }
}
