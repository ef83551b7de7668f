/**
 * What every chaos scenario shares: a fresh database with the execution logs, real worker and API processes
 * (tracked and killed after the file), enqueueing a known set of jobs, waiting for the drain on database
 * state with a deadline, and the verdict: every job terminal, none lost, every execution accounted for.
 *
 * Executions (chaosKinds.ts): each run of a job commits a `started_log` row when it begins and a
 * `processed_log` row when it finishes, on a connection of its own, so a run that was cut short is seen as
 * well as one that completed. Releases (a running job given back at shutdown without spending its attempt)
 * are recorded by a trigger on `jobs` (test/support/jobEvents.ts), in the releasing transaction, not taken
 * from any worker's logs. The verdict reconciles these against each job's final row:
 *
 * - every claim runs at most once: runs <= attempts + releases (a release gives its attempt back);
 * - every attempt is accounted for: a succeeded job has one error per earlier attempt (a failure, or a
 *   lease lost: "lease expired: worker X ..." written by the rescuer), a failed one one per attempt; a
 *   rescue that gave the attempt back (no start recorded: "... attempt not counted") writes an error too,
 *   counts as a release (the trigger sees `attempts` go down) and spends no attempt;
 * - completions beyond the first need a lease loss or a release each (at-least-once, never more);
 * - a succeeded job finished a run.
 */
import { afterAll, expect } from "bun:test"
import { fileURLToPath } from "node:url"
import { SQL } from "bun"
import { Effect } from "effect"
import { Queue } from "../../src/queue/Queue.ts"
import { freshDatabase, type TestDatabase } from "../support/database.ts"
import { jobEventsDdl } from "../support/jobEvents.ts"
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
  // a killed worker may be the elected maintainer (the only rescuer): another takes over within 2.7 s
  WORKER_LEADER_LEASE: "2 seconds",
  WORKER_POLL_INTERVAL: "250 millis",
  WORKER_SHUTDOWN_GRACE: "5 seconds",
  LOG_LEVEL: "Warn"
}

export interface ApiProcess {
  readonly url: string
  readonly process: Bun.Subprocess
  readonly logFile: string
}

/** One job's executions and its final row, as the verdict reconciles them. */
export interface JobAccount {
  readonly id: string
  readonly status: string
  readonly attempts: number
  /** Runs that began (`started_log`) and that finished (`processed_log`). */
  readonly runs: number
  readonly completions: number
  /** Entries of `errors`: all of them, and those the rescuer wrote for a lost lease. */
  readonly errors: number
  readonly leaseLosses: number
  /** Of the errors, the rescues that gave the attempt back (the handler's start was never recorded). */
  readonly refunds: number
  /** Times a worker gave the running job back at shutdown (from the trigger), and of those, the times that
   *  worker had begun a run of it (a release of a claim still buffered interrupted nothing). */
  readonly releases: number
  readonly releasedRuns: number
}

export interface Verdict {
  readonly jobs: number
  readonly byStatus: Record<string, number>
  /** Enqueued ids missing from the table, or not terminal at the deadline. */
  readonly lost: ReadonlyArray<string>
  readonly notTerminal: ReadonlyArray<string>
  /** Jobs whose run completed more than once. */
  readonly duplicates: ReadonlyArray<JobAccount>
  /** Jobs that began more than one run (a failed attempt's retry included). */
  readonly reruns: ReadonlyArray<JobAccount>
  /** Jobs whose account does not reconcile (see the file comment), each with why. */
  readonly violations: ReadonlyArray<JobAccount & { readonly why: ReadonlyArray<string> }>
  readonly runs: number
  readonly completions: number
  readonly leaseLosses: number
  readonly releases: number
}

/** What is wrong with one job's account; empty when it reconciles. */
const unexplained = (job: JobAccount): Array<string> => {
  const why: Array<string> = []
  if (job.runs > job.attempts + job.releases) why.push("more runs than claims")
  if (job.completions > 1 + job.leaseLosses + job.releases)
    why.push("completed more often than lease losses and releases allow")
  if (job.status === "succeeded" && job.completions === 0) why.push("succeeded without a finished run")
  const counted = job.errors - job.refunds
  if (job.status === "succeeded" && job.attempts !== counted + 1)
    why.push("succeeded with attempts not matching its errors")
  if (job.status === "failed_permanent" && job.attempts !== counted)
    why.push("failed with attempts not matching its errors")
  return why
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
  for (const log of ["started_log", "processed_log"]) {
    await pg.unsafe(`CREATE TABLE ${log} (
      job_id uuid NOT NULL, worker text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`)
    await pg.unsafe(`CREATE INDEX ON ${log} (job_id)`)
  }
  for (const statement of jobEventsDdl(["released"])) await pg.unsafe(statement)

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

  /** The verdict on the jobs `ids` (see the file comment). */
  const verdict = async (ids: ReadonlyArray<string>): Promise<Verdict> => {
    const rows: Array<JobAccount> = await pg`
      SELECT j.id::text AS id, j.status, j.attempts,
             (SELECT count(*)::int FROM started_log s WHERE s.job_id = j.id) AS runs,
             (SELECT count(*)::int FROM processed_log p WHERE p.job_id = j.id) AS completions,
             jsonb_array_length(j.errors) AS errors,
             (SELECT count(*)::int FROM jsonb_array_elements(j.errors) e
               WHERE e->>'error' LIKE 'lease expired:%') AS "leaseLosses",
             (SELECT count(*)::int FROM jsonb_array_elements(j.errors) e
               WHERE e->>'error' LIKE '%attempt not counted') AS refunds,
             (SELECT count(*)::int FROM job_events r WHERE r.job_id = j.id AND r.event = 'released') AS releases,
             (SELECT count(*)::int FROM job_events r WHERE r.job_id = j.id AND r.event = 'released'
               AND EXISTS (SELECT 1 FROM started_log s WHERE s.job_id = j.id AND s.worker = r.worker)
             ) AS "releasedRuns"
      FROM jobs j WHERE j.id = ANY(${ids}::uuid[])`
    const found = new Set(rows.map((r) => r.id))
    const byStatus: Record<string, number> = {}
    for (const r of rows) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1
    const total = (field: "runs" | "completions" | "leaseLosses" | "releases") =>
      rows.reduce((n, r) => n + r[field], 0)
    return {
      jobs: ids.length,
      byStatus,
      lost: ids.filter((id) => !found.has(id)),
      notTerminal: rows
        .filter((r) => !(terminal as ReadonlyArray<string>).includes(r.status))
        .map((r) => r.id),
      duplicates: rows.filter((r) => r.completions > 1),
      reruns: rows.filter((r) => r.runs > 1),
      violations: rows.flatMap((r) => {
        const why = unexplained(r)
        return why.length === 0 ? [] : [{ ...r, why }]
      }),
      runs: total("runs"),
      completions: total("completions"),
      leaseLosses: total("leaseLosses"),
      releases: total("releases")
    }
  }

  /**
   * Waits until at least one of `workerIds` is running jobs: `running` and leased to it, with a run it began
   * (`started_log`). Answers the ids of those jobs by worker, for the workers that have any.
   */
  const runningOn = (workerIds: ReadonlyArray<string>, timeoutMs = 30_000) =>
    waitFor(
      `one of ${workerIds.join(", ")} to be running jobs`,
      async () => {
        const rows: Array<{ worker: string; ids: Array<string> }> = await pg`
          SELECT j.lease_owner AS worker, array_agg(j.id::text) AS ids FROM jobs j
          WHERE j.status = 'running' AND j.lease_owner = ANY(${workerIds}::text[])
            AND EXISTS (SELECT 1 FROM started_log s WHERE s.job_id = j.id AND s.worker = j.lease_owner)
          GROUP BY j.lease_owner`
        return rows.length > 0 ? new Map(rows.map((r) => [r.worker, r.ids])) : undefined
      },
      { timeoutMs, intervalMs: 20 }
    )

  /**
   * Of the jobs `ids`, those the rescuer took back from `workerId` after its lease expired (with the attempt
   * counted, or given back when the worker died before its renewal recorded the start).
   */
  const rescuedFrom = async (workerId: string, ids: ReadonlyArray<string>) => {
    const rows: Array<{ id: string }> = await pg`
      SELECT j.id::text AS id FROM jobs j
      WHERE j.id = ANY(${ids}::uuid[]) AND EXISTS (
        SELECT 1 FROM jsonb_array_elements(j.errors) e
        WHERE starts_with(e->>'error', ${`lease expired: worker ${workerId} stopped renewing it`}))`
    return rows.map((r) => r.id)
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
    runningOn,
    rescuedFrom,
    running
  }
}

export type Chaos = Awaited<ReturnType<typeof setupChaos>>

/** Sleep times spread between `min` and `max` ms, for `record` payloads. */
export const jitter = (min: number, max: number) => () => ({
  sleepMs: min + Math.floor(Math.random() * (max - min))
})

/** Every job terminal and succeeded, none missing, every execution accounted for. */
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
  reruns: verdict.reruns.length,
  leaseLosses: verdict.leaseLosses,
  releases: verdict.releases,
  runs: verdict.runs,
  completions: verdict.completions
})

/** Counts by HTTP status, in status order. */
export const tally = (answers: Iterable<[number, number]>) =>
  Object.fromEntries([...answers].sort(([a], [b]) => a - b))
