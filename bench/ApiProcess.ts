/**
 * Our HTTP API as a real process (`bun src/api.ts`) on a free local port, with the bench kinds. Checked
 * for at run time: the API is being written alongside the benchmarks.
 */
import { existsSync } from "node:fs"
import { rootDirectory } from "./BenchDependencies.ts"
import { modulePath } from "./BenchKinds.ts"
import * as Runtime from "./Runtime.ts"
import { logPath } from "./WorkerProcess.ts"

export const present = () => existsSync(`${rootDirectory}src/api.ts`)

export interface ApiProcess {
  readonly process: Bun.Subprocess
  readonly baseUrl: string
  readonly stop: () => Promise<void>
}

export const start = async (
  databaseUrl: string,
  port: number,
  env: Record<string, string> = {}
): Promise<ApiProcess> => {
  const logFile = logPath(`api-${port}.log`)
  const child = Bun.spawn(Runtime.program("src/api.ts"), {
    cwd: rootDirectory,
    env: {
      ...process.env,
      ...Runtime.environment("src/api.ts"),
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      JOBS_MODULE: modulePath,
      ...env
    },
    stdout: Bun.file(logFile),
    stderr: Bun.file(`${logFile}.err`)
  })
  const baseUrl = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 20_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the API exited with ${child.exitCode}; see ${logFile}.err`)
    const ok = await fetch(`${baseUrl}/health`)
      .then((r) => r.ok)
      .catch(() => false)
    if (ok) break
    if (Date.now() > deadline) {
      child.kill("SIGKILL")
      throw new Error(`the API did not answer /health within 20 s; see ${logFile}`)
    }
    await Bun.sleep(100)
  }
  return {
    process: child,
    baseUrl,
    stop: async () => {
      child.kill("SIGTERM")
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000)
      await child.exited
      clearTimeout(timer)
    }
  }
}
