/**
 * `npm start` as a real process: `bun run src/dev.ts`, the API and a worker in one process, on a free local
 * port with WORKER_METRICS_PORT=0. Without `databaseUrl` it runs on the embedded Postgres (PGlite) in
 * `dataDirectory`; with it, on that server. Start time is the spawn to the first 2xx from /health. Output
 * goes to a log file under $TMPDIR/jobq-bench/.
 */
import { rootDirectory } from "./BenchDependencies.ts"
import { freePort } from "./FreePort.ts"
import * as Runtime from "./Runtime.ts"
import { logPath } from "./WorkerProcess.ts"

export interface DevProcess {
  readonly process: Bun.Subprocess
  readonly baseUrl: string
  readonly logFile: string
  /** Spawn to the first 2xx from /health. */
  readonly startSeconds: number
  /** SIGTERM, then SIGKILL after `timeoutMs`. */
  readonly stop: (timeoutMs?: number) => Promise<void>
}

export type Storage =
  | { readonly _tag: "embedded"; readonly dataDirectory: string }
  | { readonly _tag: "server"; readonly databaseUrl: string }

export const start = async (
  storage: Storage,
  name: string,
  env: Readonly<Record<string, string>> = {},
  timeoutMs = 60_000
): Promise<DevProcess> => {
  const port = freePort()
  const logFile = logPath(`${name}.log`)
  // no DATABASE_URL at all selects the embedded database
  const { DATABASE_URL: _, TEST_DATABASE_URL: __, PGLITE_DATA_DIR: ___, ...inherited } = process.env
  const child = Bun.spawn([process.execPath, "run", "src/dev.ts"], {
    cwd: rootDirectory,
    env: {
      ...inherited,
      // as `npm start` runs it (the JavaScriptCore setting its script sets)
      ...Runtime.environment("src/dev.ts", undefined, "bun"),
      ...(storage._tag === "embedded"
        ? { PGLITE_DATA_DIR: storage.dataDirectory }
        : { DATABASE_URL: storage.databaseUrl }),
      PORT: String(port),
      WORKER_METRICS_PORT: "0",
      ...env
    },
    stdout: Bun.file(logFile),
    stderr: Bun.file(`${logFile}.err`)
  })
  const began = performance.now()
  const stop = async (stopTimeoutMs = 20_000) => {
    if (child.exitCode !== null) return
    child.kill("SIGTERM")
    const timer = setTimeout(() => child.kill("SIGKILL"), stopTimeoutMs)
    await child.exited
    clearTimeout(timer)
  }
  const baseUrl = `http://127.0.0.1:${port}`
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}; see ${logFile}.err`)
    const ok = await fetch(`${baseUrl}/health`).then(
      (r) => r.ok,
      () => false
    )
    if (ok) break
    if (Date.now() > deadline) {
      child.kill("SIGKILL")
      await child.exited
      throw new Error(`${name} did not answer /health within ${timeoutMs} ms; see ${logFile}`)
    }
    await Bun.sleep(25)
  }
  return { process: child, baseUrl, logFile, startSeconds: (performance.now() - began) / 1000, stop }
}
