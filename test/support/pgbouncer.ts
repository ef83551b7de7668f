/**
 * A private PgBouncer (Debian's `pgbouncer`, installed by .ci/run) in front of a Postgres server, for the
 * tests and benchmarks that run the programs behind a pooler: a temporary config and auth file, a free port
 * on 127.0.0.1, no Unix socket, clients trusted (the pooler logs in to Postgres as the URL's user, with its
 * password if it has one). Every database name a client asks for is passed through to the same name.
 */
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort } from "./ports.ts"

export interface PgBouncer {
  readonly port: number
  readonly pid: number
  /** The version line it printed (`PgBouncer 1.18.0`). */
  readonly version: string
  /** The URL of `database` through the pooler, as the URL's user. */
  readonly url: (database: string) => string
  /** Everything it logged so far. */
  readonly log: () => string
  readonly stop: () => Promise<void>
}

export interface PgBouncerOptions {
  /** A URL of the Postgres server (any database on it): its host, port, user and password are used. */
  readonly server: string
  readonly poolMode: "session" | "transaction"
  /** `default_pool_size`: server connections per database and user. */
  readonly poolSize: number
  /** More `[pgbouncer]` settings, written as given. */
  readonly settings?: Readonly<Record<string, string | number>>
}

/** The `pgbouncer` binary: on the PATH, or where Debian puts it (/usr/sbin is not on every PATH). */
export const binary = () =>
  Bun.which("pgbouncer") ?? (existsSync("/usr/sbin/pgbouncer") ? "/usr/sbin/pgbouncer" : undefined)

const quoted = (value: string) => `"${value.replaceAll('"', '""')}"`

export const start = async (options: PgBouncerOptions): Promise<PgBouncer> => {
  const executable = binary()
  if (executable === undefined) {
    throw new Error(
      "pgbouncer is not installed: `apt-get install -y pgbouncer` (Debian's package; .ci/run installs it)"
    )
  }
  const server = new URL(options.server)
  const user = decodeURIComponent(server.username || "postgres")
  const password = decodeURIComponent(server.password)
  const port = freePort()
  // readable by the unprivileged user PgBouncer switches to when started by root
  const dir = mkdtempSync(join(tmpdir(), "jobq-pgbouncer-"))
  chmodSync(dir, 0o755)
  const authFile = join(dir, "userlist.txt")
  writeFileSync(authFile, `${quoted(user)} ${quoted(password)}\n`, { mode: 0o644 })
  const settings: Record<string, string | number> = {
    listen_addr: "127.0.0.1",
    listen_port: port,
    unix_socket_dir: "",
    auth_type: "trust",
    auth_file: authFile,
    pool_mode: options.poolMode,
    default_pool_size: options.poolSize,
    max_client_conn: 1000,
    log_connections: 0,
    log_disconnections: 0,
    ...options.settings
  }
  const serverPassword = password === "" ? "" : ` password=${password}`
  const ini = [
    "[databases]",
    `* = host=${server.hostname} port=${server.port || 5432} user=${user}${serverPassword}`,
    "[pgbouncer]",
    ...Object.entries(settings).map(([name, value]) => `${name} = ${value}`)
  ].join("\n")
  const configFile = join(dir, "pgbouncer.ini")
  writeFileSync(configFile, `${ini}\n`, { mode: 0o644 })
  // PgBouncer refuses to run as root; Postgres's own user is there wherever Postgres is installed
  const asUser = process.getuid?.() === 0 ? ["-u", "postgres"] : []
  const child = Bun.spawn([executable, ...asUser, configFile], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe"
  })
  let log = ""
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder()
    const reader = stream.getReader()
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      log += decoder.decode(value, { stream: true })
    }
  }
  void collect(child.stdout)
  void collect(child.stderr)
  const stop = async () => {
    child.kill("SIGTERM")
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000)
    await child.exited
    clearTimeout(timer)
    rmSync(dir, { recursive: true, force: true })
  }
  const deadline = Date.now() + 10_000
  while (!log.includes("process up")) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop()
      throw new Error(`pgbouncer did not start on port ${port}: ${log.slice(-2000)}`)
    }
    await Bun.sleep(20)
  }
  const version = /PgBouncer [0-9.]+/.exec(log)?.[0] ?? "PgBouncer (version unknown)"
  return {
    port,
    pid: child.pid,
    version,
    url: (database) => {
      const url = new URL(options.server)
      url.hostname = "127.0.0.1"
      url.port = String(port)
      url.pathname = `/${database}`
      return url.toString()
    },
    log: () => log,
    stop
  }
}
