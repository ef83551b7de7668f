/**
 * Drain throughput of our worker: a backlog of no-op jobs, `ANALYZE jobs`, then worker processes
 * (`bun src/worker.ts`) started behind the start gate, so that they begin together. The clock starts, as
 * the peers' harnesses start theirs, at the first handler call (the bench kind `drain_noop` writes that
 * moment to a file; with several processes, the earliest) and stops at the last completion
 * (`finished_at` of the measured-th completion, the start of the transaction that committed it). Both are
 * read from the same system clock. With `deleteSucceeded` (JOB_RETENTION=0) completed rows are gone, so
 * the end is the database clock at the first poll that finds the table empty (polled every 2 ms near the
 * end, as the graphile-worker harness does): that reading is late by up to a poll.
 */
import { existsSync, readFileSync, rmSync } from "node:fs"
import type { SQL } from "bun"
import * as Backlog from "../Backlog.ts"
import type { BenchDatabase } from "../BenchDatabase.ts"
import { drainNoop, firstCallFileVariable, modulePath } from "../BenchKinds.ts"
import * as ProcessCpu from "../ProcessCpu.ts"
import * as StartGate from "../StartGate.ts"
import * as WorkerProcess from "../WorkerProcess.ts"

export interface DrainRun {
  readonly jobsPerSecond: number
  readonly seconds: number
  /**
   * CPU seconds of the database's backends from the gate's opening to the moment the harness saw the drain
   * done (with `cpuFrom`); the harness's own connections are left out (ProcessCpu.ts).
   */
  readonly postgresCpuSeconds?: number | undefined
  /** CPU seconds of the worker processes over the same window (with `cpuFrom`). */
  readonly workerCpuSeconds?: number | undefined
}

export interface DrainOptions {
  readonly backlog: number
  readonly concurrency: number
  readonly processes: number
  /** Leave this many finished jobs in the table before the backlog (queue-depth scenario). */
  readonly finishedRows?: number
  /** Time only the first this-many completions (a large backlog need not be drained to the end). */
  readonly measure?: number
  /**
   * Start the clock at this-many-th completion instead of the first handler call, and time the `measure`
   * completions after it: the steady state of a long-running worker, once the JIT has compiled its path.
   */
  readonly warmUp?: number
  readonly timeoutMs?: number
  readonly env?: Readonly<Record<string, string>>
  /** Run with JOB_RETENTION=0: succeeded jobs are deleted by the statement that completes them. */
  readonly deleteSucceeded?: boolean
  /**
   * Runs after the backlog is in and before `ANALYZE` (other queues, limits, pauses); answers how many
   * unfinished jobs it added that the drain leaves alone (a paused queue's backlog), to count them out.
   */
  readonly prepare?: (db: BenchDatabase) => Promise<number>
  /** The backlog's kind (default `drain_noop`); it must record its first call as `drain_noop` does. */
  readonly kind?: string
  /** Runs as the start gate opens (the workers are up, at their first claim): to sample counters. */
  readonly started?: (workers: ReadonlyArray<WorkerProcess.WorkerProcess>) => Promise<void>
  /** Runs once the measured completions are in, before the workers stop: to sample counters. */
  readonly drained?: (workers: ReadonlyArray<WorkerProcess.WorkerProcess>) => Promise<void>
  /** Leave WORKER_PREFETCH to the worker's default instead of the peers' fetch size (500). */
  readonly defaultPrefetch?: boolean
  /** Read the database backends' CPU over the drain through this connection (to another database). */
  readonly cpuFrom?: SQL
}

/**
 * Jobs not yet finished, counted through the two partial indexes (ready, running) so that the poll never
 * reads the finished rows: a `count(*)` of succeeded jobs over a table holding a million finished ones is
 * a parallel scan of all of them, which took both cores from the drain it was waiting for.
 */
const unfinished = (db: BenchDatabase) =>
  db.sql`
    SELECT (SELECT count(*) FROM jobs WHERE status IN ('queued', 'retrying'))
         + (SELECT count(*) FROM jobs WHERE status = 'running') AS n`.then((rows) => Number(rows[0].n))

const remaining = (db: BenchDatabase) =>
  db.sql`SELECT count(*)::int AS n, extract(epoch FROM clock_timestamp())::float8 AS at FROM jobs`.then(
    (rows) => ({ n: Number(rows[0].n), at: Number(rows[0].at) })
  )

export const run = async (db: BenchDatabase, options: DrainOptions, label: string): Promise<DrainRun> => {
  await Backlog.reset(db.sql)
  const finishedRows = options.finishedRows ?? 0
  if (finishedRows > 0) await Backlog.fill(db.sql, finishedRows, { status: "succeeded" })
  await Backlog.fill(db.sql, options.backlog, { kind: options.kind ?? drainNoop.name })
  const untouched = (await options.prepare?.(db)) ?? 0
  await Backlog.analyze(db.sql)
  const warmUp = options.warmUp ?? 0
  const measured = Math.min(options.measure ?? options.backlog - warmUp, options.backlog - warmUp)
  const workers: Array<WorkerProcess.WorkerProcess> = []
  const firstCallFiles = Array.from(
    { length: options.processes },
    (_, i) => `${WorkerProcess.logDirectory}/${label}-${i}.first-call`
  )
  for (const file of firstCallFiles) rmSync(file, { force: true })
  /** Epoch seconds of the first handler call in any of the processes. */
  const firstCall = () => {
    const written = firstCallFiles.filter((f) => existsSync(f))
    if (written.length === 0) throw new Error(`${label}: no worker recorded its first handler call`)
    return Math.min(...written.map((f) => Number(readFileSync(f, "utf8")) / 1000))
  }
  const cpu = options.cpuFrom === undefined ? undefined : ProcessCpu.postgresWindow(options.cpuFrom, db.name)
  const workerCpu = () => workers.reduce((sum, w) => sum + ProcessCpu.seconds(w.process.pid), 0)
  let workerCpuAtGate = 0
  let workerCpuSeconds: number | undefined
  const cpuEnd = async () => {
    if (cpu === undefined) return
    workerCpuSeconds = workerCpu() - workerCpuAtGate
    await cpu.end()
  }
  try {
    const gateOpened = await StartGate.hold(
      db.sql,
      options.processes,
      () => {
        for (let i = 0; i < options.processes; i++) {
          workers.push(
            WorkerProcess.spawn(db.url, `${label}-${i}`, {
              JOBS_MODULE: modulePath,
              [firstCallFileVariable]: firstCallFiles[i]!,
              WORKER_CONCURRENCY: String(options.concurrency),
              // the same batch the peers fetch (graphile-worker localQueue.size, pg-boss batchSize)
              ...(options.defaultPrefetch ? {} : { WORKER_PREFETCH: "500" }),
              ...(options.deleteSucceeded ? { JOB_RETENTION: "0" } : {}),
              ...options.env
            })
          )
        }
      },
      undefined,
      async () => {
        workerCpuAtGate = workerCpu()
        await cpu?.start()
      }
    )
    await options.started?.(workers)
    const deadline = Date.now() + (options.timeoutMs ?? 120_000)
    const check = () => {
      if (Date.now() > deadline) throw new Error(`${label}: backlog not drained in time`)
      for (const worker of workers) {
        if (worker.process.exitCode !== null) {
          throw new Error(`${label}: worker exited with ${worker.process.exitCode}; see ${worker.logFile}`)
        }
      }
    }
    if (options.deleteSucceeded) {
      for (;;) {
        const left = await remaining(db)
        if (left.n === 0) {
          await options.drained?.(workers)
          await cpuEnd()
          const seconds = left.at - firstCall()
          return {
            jobsPerSecond: options.backlog / seconds,
            seconds,
            postgresCpuSeconds: cpu?.seconds(),
            workerCpuSeconds
          }
        }
        check()
        await Bun.sleep(left.n > options.backlog / 10 ? 50 : 2)
      }
    }
    // no-op jobs do not fail: the backlog minus what is unfinished is what completed. The poll is load on
    // the database being measured, so it waits at least 20 times as long as it took (a million ready jobs
    // take it a while to count)
    for (;;) {
      const started = performance.now()
      const completed = options.backlog - ((await unfinished(db)) - untouched)
      if (completed >= warmUp + measured) break
      check()
      await Bun.sleep(Math.max(100, 20 * (performance.now() - started)))
    }
    await cpuEnd()
    // the completions that bound the measured ones (the finished rows left beforehand are older than the gate)
    const completion = async (nth: number) => {
      const [{ finished }] = await db.sql`
        SELECT extract(epoch FROM finished_at)::float8 AS finished FROM jobs
        WHERE status = 'succeeded' AND finished_at >= to_timestamp(${gateOpened})
        ORDER BY finished_at LIMIT 1 OFFSET ${nth - 1}`
      return Number(finished)
    }
    await options.drained?.(workers)
    const end = await completion(warmUp + measured)
    const seconds = end - (warmUp === 0 ? firstCall() : await completion(warmUp))
    return {
      jobsPerSecond: measured / seconds,
      seconds,
      postgresCpuSeconds: cpu?.seconds(),
      workerCpuSeconds
    }
  } finally {
    await Promise.all(workers.map((w) => w.stop()))
  }
}
