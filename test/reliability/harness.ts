/**
 * What every chaos scenario shares: a fresh database with `processed_log`, real worker and API processes
 * (tracked and killed after the file), enqueueing a known set of jobs, waiting for the drain on database
 * state with a deadline, and the verdict: every job terminal, none lost, executions counted per job.
 *
 * Executions: a `record` job writes one `processed_log` row per finished run. More than one row is allowed
 * only for a job whose lease was lost mid-run (its worker died, stalled or lost its session): the rescuer
 * writes "lease expired: worker X ..." into the job's `errors` for each such loss, so a job may have at most
 * 1 + that many rows. Anything beyond is a duplicate execution, and fails the scenario.
 */
import { afterAll, expect } from "bun:test"
import { existsSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { SQL } from "bun"
import { Effect } from "effect"
import { Queue } from "../../src/queue/Queue.ts"
import { freshDatabase, type TestDatabase } from "../support/database.ts"
import { freePort } from "../support/ports.ts"
import { spawnWorker, type WorkerProcess } from "../support/processes.ts"
import { queueRuntime, waitFor } from "../support/runtime.ts"
import { kinds } from "./chaosKinds.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))
export const chaosKinds = fileURLToPath(new URL("./chaosKinds.ts", import.meta.url))

export const terminal = ["succeeded", "failed_permanent", "cancelled"] as const

/** Worker settings that make rescue quick enough for seconds-long scenarios. */
export const quickLeases: Record<string, string> = {
  WORKER_LEASE: "3 seconds",
  WORKER_LEASE_RENEW: "300 millis",
  WORKER_RESCUE_INTERVAL: "500 millis",
  WORKER_POLL_INTERVAL: "250 millis",
  WORKER_SHUTDOWN_GRACE: "5 seconds",
  LOG_LEVEL: "Warn"
}

export interface ApiProcess {
  readonly url: string
  readonly process: Bun.Subprocess
  readonly logFile: string
}

export interface Verdict {
  readonly jobs: number
  readonly byStatus: Record<string, number>
  /** Enqueued ids missing from the table, or not terminal at the deadline. */
  readonly lost: ReadonlyArray<string>
  readonly notTerminal: ReadonlyArray<string>
  /** Jobs that ran more than once, with their executions and lease losses. */
  readonly duplicates: ReadonlyArray<{ id: string; executions: number; leaseLosses: number }>
  /** Duplicates not explained by lease losses, and succeeded jobs with no recorded execution. */
  readonly violations: ReadonlyArray<{ id: string; status: string; executions: number; leaseLosses: number }>
  readonly executions: number
  readonly leaseLosses: number
}

/**
 * A fresh database for one chaos file (or the one given, e.g. on a private cluster), with `processed_log`,
 * process management and the verdict. Everything is torn down after the file's tests.
 */
export const setupChaos = async (file: string, database?: TestDatabase) => {
  const db: TestDatabase = database ?? (await freshDatabase(file))
  const runtime = queueRuntime(db.url, kinds)
  // test-side reads and writes; application_name "" so backend_kill never targets them
  const pg = new SQL({ url: db.url, max: 4 })
  await pg`CREATE TABLE processed_log (
    job_id uuid NOT NULL, worker text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`
  await pg`CREATE INDEX ON processed_log (job_id)`

  const workers = new Set<WorkerProcess>()
  const apis = new Set<ApiProcess>()
  afterAll(async () => {
    for (const w of workers) w.process.kill("SIGKILL")
    for (const a of apis) a.process.kill("SIGKILL")
    await Promise.all([...workers, ...apis].map((p) => p.process.exited))
    await pg.close()
    await runtime.dispose()
    await db.drop()
  })

  const worker = (id: string, env: Record<string, string> = {}) => {
    const w = spawnWorker(db.url, id, { JOBS_MODULE: chaosKinds, ...quickLeases, ...env })
    workers.add(w)
    void w.process.exited.then(() => workers.delete(w))
    return w
  }

  /** Ends a worker with a signal and waits (bounded) for it to exit. */
  const stop = async (w: WorkerProcess | ApiProcess, signal: "SIGTERM" | "SIGKILL", timeoutMs = 30_000) => {
    w.process.kill(signal)
    const timer = new Promise<never>((_, reject) =>
      setTimeout(
        () => reject(new Error(`process did not exit within ${timeoutMs} ms of ${signal}`)),
        timeoutMs
      )
    )
    return Promise.race([w.process.exited, timer])
  }

  /** The API program on a free port of 127.0.0.1, healthy before this returns. */
  const api = async (env: Record<string, string> = {}): Promise<ApiProcess> => {
    const port = freePort()
    const logFile = `${db.url.split("/").pop()}-api-${port}.log`
    const child = Bun.spawn([process.execPath, "src/api.ts"], {
      cwd: root,
      env: {
        ...process.env,
        DATABASE_URL: db.url,
        JOBS_MODULE: chaosKinds,
        PORT: String(port),
        LOG_LEVEL: "Warn",
        QUEUE_METRICS_INTERVAL: "0",
        ...env
      },
      stdout: Bun.file(`/tmp/jobq-${logFile}`),
      stderr: Bun.file(`/tmp/jobq-${logFile}.err`)
    })
    const handle = { url: `http://127.0.0.1:${port}`, process: child, logFile: `/tmp/jobq-${logFile}` }
    apis.add(handle)
    await waitFor(
      "the API process to answer /health",
      async () => {
        if (child.exitCode !== null) throw new Error(`the API exited with ${child.exitCode}`)
        const ok = await fetch(`${handle.url}/health`).then(
          (r) => r.status === 200,
          () => false
        )
        return ok ? true : undefined
      },
      { timeoutMs: 30_000, intervalMs: 100 }
    )
    return handle
  }

  /** Enqueues `count` jobs of `kind` on `queue` in one batch; answers their ids. */
  const enqueue = async (
    queue: string,
    count: number,
    payload: (index: number) => Record<string, number>,
    options: { kind?: string; priority?: (index: number) => number; maxAttempts?: number } = {}
  ) => {
    const ids: Array<string> = []
    for (let from = 0; from < count; from += 1000) {
      const batch = Array.from({ length: Math.min(1000, count - from) }, (_, i) => ({
        kind: options.kind ?? "record",
        payload: payload(from + i),
        queue,
        maxAttempts: options.maxAttempts ?? 25,
        ...(options.priority === undefined ? {} : { priority: options.priority(from + i) })
      }))
      const jobs = await runtime.runPromise(Queue.use((q) => q.enqueueMany(batch)))
      ids.push(...jobs.map((j) => j.job.id as string))
    }
    return ids
  }

  /** Job counts by status on `queue`; undefined while the database does not answer. */
  const statusCounts = async (queue: string): Promise<Record<string, number> | undefined> => {
    try {
      const rows =
        await pg`SELECT status, count(*)::int AS n FROM jobs WHERE queue = ${queue} GROUP BY status`
      return Object.fromEntries(rows.map((r: { status: string; n: number }) => [r.status, r.n]))
    } catch {
      return undefined
    }
  }

  const succeededCount = async (queue: string) => (await statusCounts(queue))?.succeeded ?? 0

  /** Waits until no job of `queue` is queued, retrying or running; answers the milliseconds it took. */
  const drained = async (queue: string, timeoutMs: number) => {
    const began = Date.now()
    await waitFor(
      `queue ${queue} to drain`,
      async () => {
        const counts = await statusCounts(queue)
        if (counts === undefined) return undefined
        const open = (counts.queued ?? 0) + (counts.retrying ?? 0) + (counts.running ?? 0)
        return open === 0 ? true : undefined
      },
      { timeoutMs, intervalMs: 100 }
    )
    return Date.now() - began
  }

  /** Waits until `n` more jobs of `queue` have succeeded than `before`; answers the milliseconds it took. */
  const progressed = async (queue: string, before: number, n: number, timeoutMs: number) => {
    const began = Date.now()
    await waitFor(
      `${n} more jobs of ${queue} to succeed`,
      async () => ((await succeededCount(queue)) >= before + n ? true : undefined),
      { timeoutMs, intervalMs: 50 }
    )
    return Date.now() - began
  }

  /**
   * The verdict on the jobs `ids` (see the file comment). `releases` counts, per job, the runs a worker
   * interrupted at shutdown and released (`releasedAtShutdown`): each allows one more execution too.
   */
  const verdict = async (
    ids: ReadonlyArray<string>,
    releases: ReadonlyMap<string, number> = new Map()
  ): Promise<Verdict> => {
    const rows: Array<{ id: string; status: string; executions: number; leaseLosses: number }> = await pg`
      SELECT j.id::text AS id, j.status,
             (SELECT count(*)::int FROM processed_log p WHERE p.job_id = j.id) AS executions,
             (SELECT count(*)::int FROM jsonb_array_elements(j.errors) e
               WHERE e->>'error' LIKE 'lease expired:%') AS "leaseLosses"
      FROM jobs j WHERE j.id = ANY(${ids}::uuid[])`
    const found = new Set(rows.map((r) => r.id))
    const byStatus: Record<string, number> = {}
    for (const r of rows) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1
    return {
      jobs: ids.length,
      byStatus,
      lost: ids.filter((id) => !found.has(id)),
      notTerminal: rows
        .filter((r) => !(terminal as ReadonlyArray<string>).includes(r.status))
        .map((r) => r.id),
      duplicates: rows
        .filter((r) => r.executions > 1)
        .map((r) => ({ id: r.id, executions: r.executions, leaseLosses: r.leaseLosses })),
      violations: rows.filter(
        (r) =>
          r.executions > 1 + r.leaseLosses + (releases.get(r.id) ?? 0) ||
          (r.status === "succeeded" && r.executions === 0)
      ),
      executions: rows.reduce((n, r) => n + r.executions, 0),
      leaseLosses: rows.reduce((n, r) => n + r.leaseLosses, 0)
    }
  }

  /** `running` jobs left on `queue` (after every worker stopped, there must be none). */
  const running = async (queue: string) => (await statusCounts(queue))?.running ?? 0

  return {
    db,
    pg,
    runtime,
    run: <A, E>(effect: Effect.Effect<A, E, never>) => Effect.runPromise(effect),
    worker,
    workers: () => [...workers],
    api,
    stop,
    enqueue,
    statusCounts,
    succeededCount,
    drained,
    progressed,
    verdict,
    running
  }
}

export type Chaos = Awaited<ReturnType<typeof setupChaos>>

/**
 * Jobs the workers interrupted at shutdown and released to the queue, with how often, from their JSON logs
 * (the workers need LOG_LEVEL=Info). A released run may already have done its work (`record` wrote its row)
 * when the grace period ended, so it may run again: at-least-once, like a lease loss.
 */
export const releasedAtShutdown = (logFiles: ReadonlyArray<string>) => {
  const released = new Map<string, number>()
  for (const file of logFiles) {
    if (!existsSync(file)) continue
    for (const line of readFileSync(file, "utf8").split("\n")) {
      if (!line.includes("released to the queue at shutdown")) continue
      try {
        const id = JSON.parse(line).jobId as string
        released.set(id, (released.get(id) ?? 0) + 1)
      } catch {}
    }
  }
  return released
}

/** Sleep times spread between `min` and `max` ms, for `record` payloads. */
export const jitter = (min: number, max: number) => () => ({
  sleepMs: min + Math.floor(Math.random() * (max - min))
})

/** Every job terminal and succeeded, none missing, no execution beyond what lease losses explain. */
export const expectNothingLost = (verdict: Verdict) => {
  expect(verdict.lost).toEqual([])
  expect(verdict.notTerminal).toEqual([])
  expect(verdict.violations).toEqual([])
  expect(verdict.byStatus).toEqual({ succeeded: verdict.jobs })
}

/** The verdict's figures for the report. */
export const summary = (verdict: Verdict) => ({
  jobs: verdict.jobs,
  lost: verdict.lost.length + verdict.notTerminal.length,
  duplicates: verdict.duplicates.length,
  duplicateIds: verdict.duplicates.map((d) => d.id),
  leaseLosses: verdict.leaseLosses,
  executions: verdict.executions
})

/** Counts by HTTP status, in status order. */
export const tally = (answers: Iterable<[number, number]>) =>
  Object.fromEntries([...answers].sort(([a], [b]) => a - b))
