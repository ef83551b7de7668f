/**
 * One maintainer at a time. Every worker tries to take or renew the `maintenance` lease (a row in
 * `leaders`) every third of `WORKER_LEADER_LEASE`; the statement succeeds only for the holder, or for anyone
 * once the lease expired. A worker counts itself the maintainer until the lease it last renewed would
 * expire, measured from before it asked, so it stops believing so before any other worker can take over
 * (two maintainers at once would still be harmless: every maintenance statement locks what it changes with
 * SKIP LOCKED). When the maintainer dies another worker takes over within the lease and a third of it;
 * one that stops resigns, and the next election takes over within a third of the lease.
 *
 * Periodic work that must not run in every worker hangs off `periodic`: lease rescue, pruning, counting,
 * and any future scheduler (cron).
 */
import { Cause, Context, Duration, Effect, Layer, Metric, Schedule, type Scope } from "effect"
import { WorkerConfig } from "../Config.ts"
import { WorkerRepo } from "../queue/WorkerRepo.ts"
import { maintainer } from "./WorkerMetrics.ts"

export const role = "maintenance"

const make = Effect.gen(function* () {
  const config = yield* WorkerConfig
  const repo = yield* WorkerRepo
  const leaseMs = Duration.toMillis(config.leaderLease)
  const every = Duration.millis(Math.max(1, Math.floor(leaseMs / 3)))
  /** performance.now() until which this worker is the maintainer. */
  let until = 0
  const isLeaderNow = () => performance.now() < until

  const elect = Effect.gen(function* () {
    const asked = performance.now()
    const was = isLeaderNow()
    const holds = yield* repo.elect(role, config.workerId, leaseMs)
    until = holds ? asked + leaseMs : 0
    if (holds !== was) {
      yield* holds
        ? Effect.logInfo(`${config.workerId} is the maintainer now`)
        : Effect.logInfo(`${config.workerId} is no longer the maintainer`)
    }
    yield* Metric.update(maintainer, holds ? 1 : 0)
  }).pipe(
    Effect.catchCause((cause) =>
      Effect.logWarning(
        `maintainer election failed${isLeaderNow() ? "; still the maintainer until the lease runs out" : ""}`,
        Cause.pretty(cause)
      )
    )
  )

  yield* Effect.addFinalizer(() =>
    Effect.suspend(() => {
      if (!isLeaderNow()) return Effect.void
      until = 0
      return repo.resign(role, config.workerId).pipe(
        Effect.andThen(Effect.logInfo(`${config.workerId} resigned as the maintainer`)),
        Effect.catchCause((cause) =>
          Effect.logWarning("resigning as the maintainer failed", Cause.pretty(cause))
        )
      )
    })
  )
  yield* elect
  yield* elect.pipe(
    Effect.repeat(Schedule.spaced(every)),
    Effect.annotateLogs({ module: "Leader", fiber: "election" }),
    Effect.forkScoped
  )

  return {
    /** Whether this worker is the maintainer now. */
    isLeader: Effect.sync(isLeaderNow),
    /**
     * Runs `task` every `interval` in the scope, whenever this worker is the maintainer then; a failure is
     * logged and the task runs again next interval.
     */
    periodic: (
      name: string,
      interval: Duration.Input,
      task: Effect.Effect<void, unknown>
    ): Effect.Effect<void, never, Scope.Scope> =>
      Effect.suspend(() => (isLeaderNow() ? task : Effect.void)).pipe(
        Effect.catchCause((cause) =>
          Effect.logWarning(`${name} failed; trying again next interval`, Cause.pretty(cause))
        ),
        Effect.repeat(Schedule.spaced(interval)),
        Effect.annotateLogs({ module: "Maintenance", fiber: name }),
        Effect.forkScoped,
        Effect.asVoid
      )
  }
})

export class Leader extends Context.Service<Leader, Effect.Success<typeof make>>()("jobq/Leader") {
  static readonly layer = Layer.effect(Leader, make)
}
