/**
 * Housekeeping, done by the one elected maintainer (`Leader`) among the workers, so no separate process is
 * needed and no two workers repeat it: rescue running jobs whose lease expired (their worker crashed or
 * stalled) back to the queue; analyze the jobs table if Postgres never has; recount finished jobs per queue
 * for GET /queues; forget workers that stopped heartbeating; and delete finished jobs past their retention
 * (`JOB_RETENTION`, and per status `JOB_RETENTION_SUCCEEDED`, `_CANCELLED`, `_FAILED`), in small batches; and
 * tick the cron schedules (`ScheduleTicker`). Every statement locks what it changes (`SKIP LOCKED`), so a second
 * maintainer for a moment around a takeover is harmless.
 */
import { Duration, Effect, Layer, Metric } from "effect"
import { retentionOf, WorkerConfig } from "../Config.ts"
import type { JobStatus } from "../domain/Job.ts"
import { JobRepo } from "../queue/JobRepo.ts"
import { QueueRepo } from "../queue/QueueRepo.ts"
import { RetentionRepo } from "../queue/RetentionRepo.ts"
import { ScheduleControl } from "../queue/ScheduleControl.ts"
import { Scheduler } from "../queue/Scheduler.ts"
import { WorkerRepo } from "../queue/WorkerRepo.ts"
import { Leader } from "./Leader.ts"
import * as ScheduleTicker from "./ScheduleTicker.ts"
import { rescued } from "./WorkerMetrics.ts"

/** How often the maintainer looks for finished jobs past their retention. */
export const pruneInterval = Duration.minutes(1)
/** Jobs one prune statement deletes at most. */
export const pruneBatch = 1000
/** Flows one prune transaction deletes at most (each up to 1,000 jobs). */
export const pruneFlowBatch = 10
/** The least rest between two prune statements. */
const pruneRestMs = 20

/** Rows a never-analyzed jobs table may hold before maintenance analyzes it. */
const analyzeAfterRows = 1000

/** How often finished jobs are recounted per queue for GET /queues, at least; longer when counting is slow. */
export const recountInterval = Duration.seconds(30)

const maintenance = Effect.gen(function* () {
  const config = yield* WorkerConfig
  const repo = yield* JobRepo
  const queues = yield* QueueRepo
  const workers = yield* WorkerRepo
  const retention = yield* RetentionRepo
  const leader = yield* Leader

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
  yield* leader.periodic("lease-rescue", config.rescueInterval, rescue)

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
  yield* leader.periodic("analyze", Duration.seconds(1), analyzeOnce)

  // counting every finished job is a scan of the table: at most every 30 s, and never more than a
  // twentieth of the maintainer's time however large the table grows
  let nextRecount = 0
  const recount = Effect.gen(function* () {
    if (performance.now() < nextRecount) return
    const began = performance.now()
    yield* queues.recountFinished
    const registered = yield* queues.registerReady
    if (registered.length > 0)
      yield* Effect.logWarning(`registered queues that had lost their row: ${registered.join(", ")}`)
    const took = performance.now() - began
    nextRecount = performance.now() + Math.max(Duration.toMillis(recountInterval), 20 * took)
  })
  yield* leader.periodic("recount", Duration.seconds(1), recount)

  const forgetWorkers = Effect.gen(function* () {
    const gone = yield* workers.deleteExpired
    if (gone.length > 0) yield* Effect.logInfo(`forgot workers that stopped heartbeating: ${gone.join(", ")}`)
  })
  yield* leader.periodic("forget-workers", config.heartbeat, forgetWorkers)

  const keptFor = Object.entries(retentionOf(config)).filter(
    (entry): entry is [JobStatus, Duration.Duration] => entry[1] !== undefined
  )
  // a flow's jobs go with their flow once all of it finished, as long ago as the longest retention
  // (kept forever when any status is kept forever): its dependents read their dependencies' results
  const flowRetention =
    keptFor.length === 3 ? keptFor.map(([, d]) => d).reduce((a, b) => Duration.max(a, b)) : undefined
  if (keptFor.length > 0) {
    // batch after batch until a status has nothing old left, resting twice as long as each batch took: the
    // deletes take at most a third of the maintainer's connection, and claims and completions get the rest
    const prune = Effect.gen(function* () {
      for (const [status, kept] of keptFor) {
        let deleted = 0
        for (;;) {
          const began = performance.now()
          const batch = yield* retention.pruneFinished(status, Duration.toMillis(kept), pruneBatch)
          deleted += batch
          if (batch < pruneBatch || !(yield* leader.isLeader)) break
          yield* Effect.sleep(Duration.millis(Math.max(pruneRestMs, 2 * (performance.now() - began))))
        }
        if (deleted > 0) yield* Effect.logInfo(`pruned ${deleted} ${status} jobs`)
      }
      if (flowRetention !== undefined) {
        let flows = 0
        for (;;) {
          const batch = yield* retention.pruneFlows(Duration.toMillis(flowRetention), pruneFlowBatch)
          flows += batch
          if (batch < pruneFlowBatch || !(yield* leader.isLeader)) break
          yield* Effect.sleep(Duration.millis(pruneRestMs))
        }
        if (flows > 0) yield* Effect.logInfo(`pruned ${flows} finished flows with their jobs`)
      }
    })
    yield* leader.periodic("prune", pruneInterval, prune)
  }

  // cron: the code's schedules upserted, then a tick every second while the maintainer
  yield* ScheduleTicker.start(leader)
})

/** The maintenance fibers and the election they hang off. */
export const layer = Layer.effectDiscard(maintenance).pipe(
  Layer.provide(Leader.layer),
  Layer.provide(Layer.merge(Scheduler.layer, ScheduleControl.layer))
)
