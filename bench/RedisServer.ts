/**
 * The Redis servers BullMQ runs on in the benchmark. `shared()`: the machine's server at 127.0.0.1:6379 as
 * it runs here (no RDB snapshots, no append-only file), used in one database index (`sharedDbIndex`) under
 * one key prefix; the harness deletes only the keys under that prefix, never the whole server or database.
 * `privateAof()`: a redis-server the harness starts on a free port with a temporary directory and
 * `appendonly yes`, `appendfsync everysec` (Redis's durable setting), stopped and removed afterwards.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { freePort } from "./FreePort.ts"

export const sharedDbIndex = 12
/** Every key the benchmark writes on the shared server starts with this (BullMQ's `prefix` option). */
export const keyPrefix = "jobq-bench"

export interface RedisServer {
  readonly port: number
  readonly db: number
  readonly pid: number
  readonly description: string
  readonly stop: () => Promise<void>
}

const cli = async (port: number, args: ReadonlyArray<string>) => {
  const child = Bun.spawn(["redis-cli", "-h", "127.0.0.1", "-p", String(port), ...args], {
    stdout: "pipe",
    stderr: "pipe"
  })
  const [out, code] = await Promise.all([new Response(child.stdout).text(), child.exited])
  if (code !== 0) throw new Error(`redis-cli ${args.join(" ")} exited with ${code}`)
  return out
}

const serverPid = async (port: number) => {
  const info = await cli(port, ["INFO", "server"])
  const pid = Number(/process_id:(\d+)/.exec(info)?.[1])
  if (!Number.isInteger(pid)) throw new Error(`no process_id in INFO of 127.0.0.1:${port}`)
  return pid
}

/** Deletes the benchmark's keys (and only those) from database `db`. */
export const deleteBenchKeys = async (port: number, db: number) => {
  const keys = (await cli(port, ["-n", String(db), "--scan", "--pattern", `${keyPrefix}:*`]))
    .split("\n")
    .filter((k) => k !== "")
  for (let i = 0; i < keys.length; i += 500) {
    await cli(port, ["-n", String(db), "DEL", ...keys.slice(i, i + 500)])
  }
}

export const shared = async (): Promise<RedisServer> => {
  const port = 6379
  const pid = await serverPid(port)
  const version = /redis_version:(\S+)/.exec(await cli(port, ["INFO", "server"]))?.[1] ?? "?"
  return {
    port,
    db: sharedDbIndex,
    pid,
    description: `Redis ${version} at 127.0.0.1:6379 (the machine's server; no RDB snapshots, no AOF), database ${sharedDbIndex}, keys under \`${keyPrefix}:\``,
    stop: () => deleteBenchKeys(port, sharedDbIndex)
  }
}

export const privateAof = async (): Promise<RedisServer> => {
  const dir = mkdtempSync(`${tmpdir()}/jobq-bench-redis-`)
  const port = freePort()
  const child = Bun.spawn(
    [
      "redis-server",
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--appendonly",
      "yes",
      "--appendfsync",
      "everysec",
      "--save",
      "",
      "--daemonize",
      "no"
    ],
    { stdout: Bun.file(`${dir}/server.log`), stderr: "inherit" }
  )
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill("SIGTERM")
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000)
      await child.exited
      clearTimeout(timer)
    }
    rmSync(dir, { recursive: true, force: true })
  }
  const deadline = Date.now() + 10_000
  for (;;) {
    try {
      if ((await cli(port, ["PING"])).trim() === "PONG") break
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop()
      throw new Error(`private redis-server on port ${port} did not start`)
    }
    await Bun.sleep(50)
  }
  const version = /redis_version:(\S+)/.exec(await cli(port, ["INFO", "server"]))?.[1] ?? "?"
  return {
    port,
    db: 0,
    pid: child.pid,
    description: `Redis ${version}, a private server on a free port with a temporary directory, \`appendonly yes\`, \`appendfsync everysec\`, no RDB snapshots`,
    stop
  }
}
