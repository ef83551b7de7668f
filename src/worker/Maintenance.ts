/**
 * Housekeeping every worker does, so no separate process is needed: rescue running jobs whose lease
 * expired (their worker crashed or stalled) back to the queue; analyze the jobs table if Postgres never
 * has; and, when `JOB_RETENTION` is set, delete finished jobs older than it. Rescue and prune take
 * `SKIP LOCKED` batches, so many workers may run them.
 */
import { Cause, Duration, Effect, Layer, Metric, Schedule } from "effect"
import { WorkerConfig } from "../Config.ts"
import { JobRepo } from "../queue/JobRepo.ts"
import { rescued } from "./WorkerMetrics.ts"

const everyInterval = (interval: Duration.Duration, name: string) => (task: Effect.Effect<void, unknown>) =>
  task.pipe(
    Effect.catchCause((cause) =>
      Effect.logWarning(`${name} failed; trying again next interval`, Cause.pretty(cause))
    ),
    Effect.repeat(Schedule.spaced(interval)),
    Effect.annotateLogs({ module: "Maintenance", fiber: name })
  )

/** Rows a never-analyzed jobs table may hold before maintenance analyzes it. */
const analyzeAfterRows = 1000

export const layer = Layer.effectDiscard(
  Effect.gen(function* () {
    const config = yield* WorkerConfig
    const repo = yield* JobRepo

    const rescue = Effect.gen(function* () {
      const jobs = yield* repo.rescueExpired()
      if (jobs.length === 0) return
      yield* Metric.update(rescued, jobs.length)
      yield* Effect.logWarning(
        `rescued ${jobs.length} jobs with expired leases`,
        jobs
          .map(
            (j) =>
              `${j.id} (${j.leaseOwner}) -> ${j.status}${j.refunded ? ", never started: attempt refunded" : ""}`
          )
          .join(", ")
      )
    })
    yield* Effect.forkScoped(everyInterval(config.rescueInterval, "lease-rescue")(rescue))

    // Without statistics the planner guesses that few jobs are ready and sorts every ready job for each
    // claim instead of reading the ready index in order: claims slow down with the backlog. Autovacuum
    // analyzes a new table within a minute or so; PGlite and servers without autovacuum never do.
    const analyzeOnce = Effect.gen(function* () {
      const stats = yield* repo.statistics
      if (stats === undefined || !stats.unknown || stats.liveRows < analyzeAfterRows) return
      yield* repo.analyze
      yield* Effect.logInfo(`analyzed jobs: Postgres had no statistics for its ${stats.liveRows} rows`)
    })
    // every second: a fresh table fills in moments, and its first drain should not run without statistics
    yield* Effect.forkScoped(everyInterval(Duration.seconds(1), "analyze")(analyzeOnce))

    const retention = config.retention
    if (retention !== undefined) {
      const prune = Effect.gen(function* () {
        const deleted = yield* repo.pruneFinished(Duration.toMillis(retention))
        if (deleted > 0) yield* Effect.logInfo(`pruned ${deleted} finished jobs`)
      })
      yield* Effect.forkScoped(everyInterval(Duration.minutes(1), "prune")(prune))
    }
  })
)
