/**
 * Our worker as a real process: `bun src/worker.ts` with what its npm script sets (the JavaScriptCore setting,
 * bench/Runtime.ts `environment`), WORKER_METRICS_PORT=0, the no-op demo kind, and the default settings unless
 * a benchmark says otherwise. Its output goes to a log file under
 * $TMPDIR/jobq-bench/ so a failing run can be read afterwards.
 */
import { mkdirSync } from "node:fs"
import { tmpdir } from "node:os"
import { rootDirectory } from "./BenchDependencies.ts"
import * as Runtime from "./Runtime.ts"

export interface WorkerProcess {
  readonly process: Bun.Subprocess
  readonly logFile: string
  /** Asks it to drain and exit (SIGTERM) and waits, killing it after `timeoutMs`. */
  readonly stop: (timeoutMs?: number) => Promise<void>
}

export const logDirectory = `${tmpdir()}/jobq-bench`

/** The path of a log file under `logDirectory`, which it makes when missing. */
export const logPath = (name: string) => {
  mkdirSync(logDirectory, { recursive: true })
  return `${logDirectory}/${name}`
}

export const spawn = (
  databaseUrl: string,
  name: string,
  env: Readonly<Record<string, string>> = {}
): WorkerProcess => {
  const logFile = logPath(`${name}.log`)
  const child = Bun.spawn(Runtime.program("src/worker.ts"), {
    // JOBQ_BENCH_ROOT: another checkout's worker (a paired before/after run, e.g. bench/liveness-drain.ts)
    cwd: env.JOBQ_BENCH_ROOT ?? rootDirectory,
    env: {
      ...process.env,
      ...Runtime.environment("src/worker.ts", env.JOBQ_BENCH_ROOT),
      DATABASE_URL: databaseUrl,
      WORKER_ID: name,
      WORKER_METRICS_PORT: "0",
      ...env
    },
    stdout: Bun.file(logFile),
    stderr: Bun.file(`${logFile}.err`)
  })
  const stop = async (timeoutMs = 10_000) => {
    if (child.exitCode !== null) return
    child.kill("SIGTERM")
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    await child.exited
    clearTimeout(timer)
  }
  return { process: child, logFile, stop }
}
