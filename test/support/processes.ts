/** Worker processes for tests about processes: crashes, signals, several workers on one database. */
import { afterAll } from "bun:test"
import { tmpdir } from "node:os"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../..", import.meta.url))
export const recordingKinds = fileURLToPath(new URL("../fixtures/recordingKinds.ts", import.meta.url))

export interface WorkerProcess {
  readonly id: string
  readonly process: Bun.Subprocess
  readonly logFile: string
}

export const spawnWorker = (
  databaseUrl: string,
  id: string,
  env: Record<string, string> = {}
): WorkerProcess => {
  const logFile = `${tmpdir()}/jobq-${id}-${process.pid}.log`
  const child = Bun.spawn([process.execPath, "src/worker.ts"], {
    cwd: root,
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      JOBS_MODULE: recordingKinds,
      WORKER_ID: id,
      WORKER_METRICS_PORT: "0",
      ...env
    },
    stdout: Bun.file(logFile),
    stderr: Bun.file(`${logFile}.err`)
  })
  return { id, process: child, logFile }
}

/** Waits for the process to exit, failing after `timeoutMs`; answers its exit code. */
export const exited = async (worker: WorkerProcess, timeoutMs = 15_000) => {
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`worker ${worker.id} did not exit within ${timeoutMs} ms`)), timeoutMs)
  )
  return Promise.race([worker.process.exited, timeout])
}

/** Waits until the worker has logged that its pool started (it claims from then on). */
export const started = async (worker: WorkerProcess, timeoutMs = 15_000) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const log = await Bun.file(worker.logFile)
      .text()
      .catch(() => "")
    if (log.includes(`worker ${worker.id} started`)) return
    if (worker.process.exitCode !== null) throw new Error(`worker ${worker.id} exited before it started`)
    if (Date.now() > deadline) throw new Error(`worker ${worker.id} did not start within ${timeoutMs} ms`)
    await Bun.sleep(20)
  }
}

export interface Program {
  readonly process: Bun.Subprocess<"ignore", "pipe", "pipe">
  /** Everything it wrote to stdout so far. */
  readonly stdout: () => string
  /** Everything it wrote to stderr so far. */
  readonly stderr: () => string
}

const collect = (stream: ReadableStream<Uint8Array>) => {
  let text = ""
  const decoder = new TextDecoder()
  const reader = stream.getReader()
  void (async () => {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      text += decoder.decode(value, { stream: true })
    }
  })()
  return () => text
}

/**
 * This process's environment without the test run's own database or port settings: what a spawned entry
 * program starts from, so that only the settings a test gives it reach it.
 */
export const programBaseEnv: Record<string, string | undefined> = (() => {
  const {
    DATABASE_URL: _,
    TEST_DATABASE_URL: __,
    PORT: ___,
    WORKER_METRICS_PORT: ____,
    ...rest
  } = process.env
  return rest
})()

/** An entry program (`src/dev.ts`, `src/api.ts`, ...) run by Bun from the repository root, its output collected. */
export const spawnProgram = (file: string, env: Record<string, string | undefined>): Program => {
  const child = Bun.spawn([process.execPath, "run", file], {
    cwd: root,
    env,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe"
  })
  return { process: child, stdout: collect(child.stdout), stderr: collect(child.stderr) }
}

/**
 * Entry programs for one test file, each started from `programBaseEnv` plus the test's own settings;
 * `killAll` kills whatever is still running and waits for it (the file's `afterAll` calls it, before it
 * takes away what the programs use).
 */
export const programs = () => {
  const started: Array<Program> = []
  return {
    spawn: (file: string, env: Record<string, string>) => {
      const program = spawnProgram(file, { ...programBaseEnv, ...env })
      started.push(program)
      return program
    },
    killAll: async () => {
      for (const p of started) p.process.kill("SIGKILL")
      await Promise.all(started.map((p) => p.process.exited))
    }
  }
}

/** Waits for the program to exit, failing after `timeoutMs`; answers its exit code. */
export const exitCode = (program: Program, timeoutMs: number) =>
  Promise.race([
    program.process.exited,
    Bun.sleep(timeoutMs).then(() => {
      // what it said so far, to tell a slow start from a hang
      throw new Error(
        `the program did not exit within ${timeoutMs} ms; stderr: ${program.stderr().slice(-2000)}; stdout: ${program.stdout().slice(-2000)}`
      )
    })
  ])

/**
 * Worker processes for one test file: `spawn` tracks each, `stopAll` stops them with SIGTERM and waits, and
 * whatever is still running when the file's tests end is killed. Each gets a small pool (`defaults`, then
 * the test's own settings): the test server is shared, and a few workers with the default pool of 10 each
 * come close to its connection limit.
 */
export const fleet = (databaseUrl: string, defaults: Record<string, string> = { DATABASE_POOL_MAX: "4" }) => {
  const workers: Array<WorkerProcess> = []
  afterAll(() => {
    for (const w of workers) w.process.kill("SIGKILL")
  })
  return {
    spawn: (id: string, env: Record<string, string> = {}) => {
      const worker = spawnWorker(databaseUrl, id, { ...defaults, ...env })
      workers.push(worker)
      return worker
    },
    stopAll: async () => {
      const stopping = workers.splice(0)
      for (const w of stopping) w.process.kill("SIGTERM")
      await Promise.all(stopping.map((w) => exited(w)))
    }
  }
}
