/**
 * The worker's row in `workers` (GET /workers): written when the worker starts, again every
 * `WORKER_HEARTBEAT`, deleted once it has stopped. Each heartbeat sets the row to expire three heartbeats
 * later, so a worker that dies without saying goodbye (kill -9, a lost host or network) leaves the listing
 * on its own. Provide it to the pool's layer so that the row goes only after the pool drained.
 */
import { hostname } from "node:os"
import { Cause, Duration, Effect, Layer, Metric, Schedule } from "effect"
import { WorkerConfig } from "../Config.ts"
import { WorkerRepo } from "../queue/WorkerRepo.ts"
import { heartbeats } from "./WorkerMetrics.ts"

/** Heartbeats a worker may miss before it leaves the listing. */
export const missedBeats = 3

export const layer = Layer.effectDiscard(
  Effect.gen(function* () {
    const config = yield* WorkerConfig
    const repo = yield* WorkerRepo
    const host = hostname()
    const beat = repo
      .beat({
        id: config.workerId,
        host,
        pid: process.pid,
        queues: config.queues,
        concurrency: config.concurrency,
        ttlMs: missedBeats * Duration.toMillis(config.heartbeat)
      })
      .pipe(
        Effect.andThen(Metric.update(heartbeats, 1)),
        Effect.catchCause((cause) => Effect.logWarning("heartbeat failed", Cause.pretty(cause)))
      )
    // added first, so it runs last: after the heartbeat fiber stopped, the row cannot come back
    yield* Effect.addFinalizer(() =>
      repo
        .farewell(config.workerId)
        .pipe(
          Effect.catchCause((cause) =>
            Effect.logWarning("could not delete this worker's row", Cause.pretty(cause))
          )
        )
    )
    yield* beat
    yield* beat.pipe(
      Effect.repeat(Schedule.spaced(config.heartbeat)),
      Effect.annotateLogs({ module: "Heartbeat" }),
      Effect.forkScoped
    )
  })
)
