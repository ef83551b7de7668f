/**
 * The worker's row in `workers`: its entry in GET /workers, and the lease over every job it holds. Written
 * when the worker starts (the pool claims nothing before that write answered), again every
 * `WORKER_HEARTBEAT` or sooner when the lease asks for it (half a lease left), and deleted once the pool has
 * drained. Each heartbeat sets the row to leave the listing three heartbeats later and extends the lease by
 * `WORKER_LEASE`: this one write is all the worker's liveness costs, however many jobs it holds. A worker
 * that dies without saying goodbye (kill -9, a lost host or network) leaves the listing on its own, and its
 * jobs are rescued once the lease ran out. Provide it to the pool's layer so that the row goes only after the
 * pool drained.
 */
import { hostname } from "node:os"
import { Cause, Context, Duration, Effect, Layer, Metric } from "effect"
import { WorkerConfig } from "../Config.ts"
import { decorrelatedJitter } from "../queue/Retry.ts"
import { WorkerRepo } from "../queue/WorkerRepo.ts"
import * as LeaseClock from "./LeaseClock.ts"
import { heartbeats } from "./WorkerMetrics.ts"

/** Heartbeats a worker may miss before it leaves the listing. */
export const missedBeats = 3

const make = Effect.gen(function* () {
  const config = yield* WorkerConfig
  const repo = yield* WorkerRepo
  const host = hostname()
  const leaseMs = Duration.toMillis(config.lease)
  const timing = LeaseClock.timing(
    leaseMs,
    Duration.toMillis(config.renewInterval),
    Duration.toMillis(config.heartbeat)
  )
  const clock = LeaseClock.make(leaseMs)
  let first = true
  const beat = Effect.gen(function* () {
    const askedAt = performance.now()
    const { continued } = yield* repo.beat({
      id: config.workerId,
      host,
      pid: process.pid,
      queues: config.queues,
      concurrency: config.concurrency,
      ttlMs: missedBeats * Duration.toMillis(config.heartbeat),
      leaseMs,
      first
    })
    clock.beat(askedAt, performance.now(), continued)
    if (!continued && !first)
      yield* Effect.logWarning(
        "this worker's lease had run out (it could not heartbeat in time): a new one began; the jobs it held are stopped and rescued"
      )
    first = false
    yield* Metric.update(heartbeats, 1)
  })
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
  // the pool claims under this row's lease: not before it was written
  yield* beat.pipe(
    Effect.tapError((error) => Effect.logWarning("first heartbeat failed; retrying", error.message)),
    Effect.retry(decorrelatedJitter({ base: "100 millis", cap: "5 seconds" })),
    Effect.orDie
  )
  const loop = Effect.gen(function* () {
    let wait = timing.beatEveryMs
    for (;;) {
      yield* Effect.sleep(Duration.millis(wait))
      wait = yield* beat.pipe(
        Effect.as(timing.beatEveryMs),
        Effect.catchCause((cause) =>
          Effect.as(Effect.logWarning("heartbeat failed", Cause.pretty(cause)), timing.retryEveryMs)
        )
      )
    }
  })
  yield* loop.pipe(Effect.annotateLogs({ module: "Heartbeat" }), Effect.forkScoped)
  return {
    /** When the jobs this worker holds run out, as far as it knows (read by the pool's lease watch). */
    clock,
    /** The lease watch looks this often (milliseconds). */
    watchMarginMs: timing.watchMarginMs
  }
})

export class Heartbeat extends Context.Service<Heartbeat, Effect.Success<typeof make>>()("jobq/Heartbeat") {}

export const layer = Layer.effect(Heartbeat, make)
