/**
 * The worker pool: one fetch fiber claims up to the number of free slots in one round trip and runs each
 * job in its own fiber, kept in a `FiberMap` by job id. A job ends by its `Exit` (see `settle`):
 * success -> succeeded; failure -> retry or fail; interruption -> cancelled (cancel was requested),
 * nothing (the lease was lost) or released back to the queue (shutdown).
 *
 * Cancelling a running job is interrupting its fiber: the request reaches us by NOTIFY on `jobq_cancel`
 * or, as a fallback, with the lease renewal every `renewInterval`.
 */
import {
  Cause,
  Context,
  Duration,
  Effect,
  Exit,
  FiberHandle,
  FiberMap,
  Layer,
  Metric,
  Queue,
  Schedule
} from "effect"
import { RetryConfig, WorkerConfig } from "../Config.ts"
import { JobKinds } from "../domain/JobKind.ts"
import { type ClaimedJob, JobRepo } from "../queue/JobRepo.ts"
import * as Notifier from "../queue/Notifier.ts"
import { decorrelatedJitter, nextDelayMs } from "../queue/Retry.ts"
import * as TraceContext from "../telemetry/TraceContext.ts"
import * as Metrics from "../telemetry/WorkerMetrics.ts"
import * as Completer from "./Completer.ts"
import { type AttemptFailed, run as runAttempt } from "./Executor.ts"

/** Why a running job's fiber was interrupted; absent means shutdown. */
type StopReason = "cancel" | "lease_lost"

const make = Effect.gen(function* () {
  const config = yield* WorkerConfig
  const retry = yield* RetryConfig
  const repo = yield* JobRepo
  const kinds = yield* JobKinds
  const workerId = config.workerId
  const leaseMs = Duration.toMillis(config.lease)

  const completer = yield* Completer.make(workerId)
  const jobs = yield* FiberMap.make<string>()
  const held = new Map<string, ClaimedJob>()
  const stopReasons = new Map<string, StopReason>()
  const wake = yield* Queue.sliding<void>(1)
  const signal = Queue.offer(wake, undefined).pipe(Effect.asVoid)
  let accepting = true

  // Times (epoch ms) when jobs we know of become ready: retries we scheduled, delayed jobs announced by
  // NOTIFY. The fetch fiber wakes at the earliest instead of waiting for the next poll.
  const wakeTimes: Array<number> = []
  const wakeAt = (epochMs: number) => {
    if (wakeTimes.length >= 1024 && epochMs >= wakeTimes[wakeTimes.length - 1]!) return Effect.void
    const at = wakeTimes.findIndex((t) => t > epochMs)
    wakeTimes.splice(at === -1 ? wakeTimes.length : at, 0, epochMs)
    if (wakeTimes.length > 1024) wakeTimes.pop()
    return signal
  }
  const pollMs = Duration.toMillis(config.pollInterval)
  // Wake a little after the due time: a timer may fire early and the database clock may run a little
  // behind ours; a claim that still finds nothing falls back to polling.
  const wakeSlackMs = 5
  const nextWaitMs = () => {
    const now = Date.now()
    while (wakeTimes.length > 0 && wakeTimes[0]! + wakeSlackMs < now) wakeTimes.shift()
    return Math.min(pollMs, wakeTimes.length === 0 ? pollMs : wakeTimes[0]! + wakeSlackMs - now)
  }

  const previousDelay = (job: ClaimedJob) => job.errors.at(-1)?.retryDelayMs ?? null

  const settleFailure = (job: ClaimedJob, error: AttemptFailed) =>
    Effect.gen(function* () {
      const retryDelayMs = yield* nextDelayMs(retry, previousDelay(job))
      const after = yield* repo.fail(workerId, {
        id: job.id,
        error: error.message,
        retryDelayMs,
        permanent: error.permanent
      })
      if (after === undefined) return yield* Metric.update(Metrics.forJob(Metrics.leaseLost, job), 1)
      const metric =
        after.status === "retrying"
          ? Metrics.retried
          : after.status === "cancelled"
            ? Metrics.cancelled
            : Metrics.failed
      yield* Metric.update(Metrics.forJob(metric, job), 1)
      if (after.status === "retrying") yield* wakeAt(after.runAt.getTime())
      yield* Effect.logInfo(`attempt ${job.attempts} failed; job is ${after.status}`, error.message)
    })

  const settleInterrupt = (job: ClaimedJob, reason: StopReason | undefined) =>
    Effect.gen(function* () {
      if (reason === "lease_lost") {
        yield* Metric.update(Metrics.forJob(Metrics.leaseLost, job), 1)
        return yield* Effect.logWarning("lost the lease; stopped the job without settling it")
      }
      if (reason === "cancel") {
        if (yield* repo.settleCancelled(workerId, job.id)) {
          yield* Metric.update(Metrics.forJob(Metrics.cancelled, job), 1)
          yield* Effect.logInfo("cancelled on request")
        }
        return
      }
      const released = yield* repo.release(workerId, [job.id])
      if (released.length > 0) {
        yield* Metric.update(Metrics.forJob(Metrics.released, job), 1)
        yield* Effect.logInfo("released to the queue at shutdown")
      }
    })

  const settle = (job: ClaimedJob, exit: Exit.Exit<unknown, AttemptFailed>) =>
    Effect.gen(function* () {
      yield* Effect.annotateCurrentSpan("jobq.job.outcome", outcomeOf(job, exit))
      if (Exit.isSuccess(exit)) {
        if (yield* completer.complete(job.id, exit.value ?? null)) {
          yield* Metric.update(Metrics.forJob(Metrics.succeeded, job), 1)
        } else {
          yield* Metric.update(Metrics.forJob(Metrics.leaseLost, job), 1)
        }
        return
      }
      if (Cause.hasInterruptsOnly(exit.cause)) return yield* settleInterrupt(job, stopReasons.get(job.id))
      const error = Cause.findErrorOption(exit.cause)
      if (error._tag === "Some") return yield* settleFailure(job, error.value)
      return yield* Effect.logError("job attempt ended without a result", Cause.pretty(exit.cause))
    }).pipe(
      // a settlement lost to a database error is recovered by the lease rescuer; never let it kill the pool
      Effect.catchCause((cause) => Effect.logError("could not settle job", Cause.pretty(cause)))
    )

  const outcomeOf = (job: ClaimedJob, exit: Exit.Exit<unknown, AttemptFailed>) =>
    Exit.isSuccess(exit)
      ? "succeeded"
      : Cause.hasInterruptsOnly(exit.cause)
        ? (stopReasons.get(job.id) ?? "released")
        : "failed"

  const start = (job: ClaimedJob) =>
    Effect.gen(function* () {
      held.set(job.id, job)
      yield* Metric.update(Metrics.forJob(Metrics.claimed, job), 1)
      const queueWaitMs = Math.max(0, (job.startedAt ?? new Date()).getTime() - job.runAt.getTime())
      yield* Metric.update(Metrics.forJob(Metrics.queueWaitSeconds, job), queueWaitMs / 1000)
      const startedAt = performance.now()
      const parent = TraceContext.parentSpan(job.traceContext)
      const attempt = runAttempt(kinds, job).pipe(
        Effect.onExit((exit) =>
          Effect.gen(function* () {
            yield* Metric.update(
              Metrics.forJob(Metrics.executionSeconds, job),
              (performance.now() - startedAt) / 1000
            )
            yield* settle(job, exit)
            held.delete(job.id)
            stopReasons.delete(job.id)
            yield* Metric.update(Metrics.running, held.size)
            yield* signal
          })
        ),
        // a child of the enqueuing span when the job carries one, so one trace spans both processes
        Effect.withSpan("jobq.job.execute", {
          kind: "consumer",
          ...(parent === undefined ? { root: true } : { parent }),
          attributes: {
            "jobq.job.id": job.id,
            "jobq.job.kind": job.kind,
            "jobq.job.queue": job.queue,
            "jobq.job.attempt": job.attempts,
            "jobq.job.queue_wait_ms": queueWaitMs
          }
        }),
        Effect.annotateLogs({ fiber: "job", jobId: job.id, kind: job.kind, attempt: job.attempts })
      )
      yield* FiberMap.run(jobs, job.id, attempt)
      yield* Metric.update(Metrics.running, held.size)
    })

  /** Interrupts a running job's fiber, remembering why so that `settle` does the right thing. */
  const stop = (id: string, reason: StopReason) =>
    Effect.gen(function* () {
      if (!held.has(id) || stopReasons.has(id)) return
      stopReasons.set(id, reason)
      yield* FiberMap.remove(jobs, id)
    })

  const claimOnce = Effect.gen(function* () {
    const free = config.concurrency - held.size
    if (free <= 0 || !accepting) return false
    const began = performance.now()
    const claimed = yield* repo.claim(workerId, free, leaseMs, config.queues).pipe(
      Effect.tap((jobs) => Effect.annotateCurrentSpan("jobq.claim.count", jobs.length)),
      Effect.withSpan("jobq.claim", { attributes: { "jobq.claim.limit": free } })
    )
    yield* Metric.update(Metrics.claimSeconds, (performance.now() - began) / 1000)
    for (const job of claimed) yield* start(job)
    return claimed.length === free
  })

  const fetchLoop = Effect.gen(function* () {
    for (;;) {
      // a full claim means more may be waiting: claim again as soon as a slot frees
      const full = yield* claimOnce
      if (!full || held.size >= config.concurrency) {
        yield* Queue.take(wake).pipe(Effect.timeoutOption(nextWaitMs()))
      }
    }
  }).pipe(
    Effect.tapError((error) => Effect.logWarning("claiming failed; backing off", error.message)),
    Effect.retry(decorrelatedJitter({ base: "100 millis", cap: "10 seconds" })),
    Effect.annotateLogs({ module: "WorkerPool", fiber: "fetch" })
  )

  const renewLoop = Effect.gen(function* () {
    const ids = [...held.keys()]
    if (ids.length === 0) return
    const states = yield* repo.renewLeases(workerId, ids, leaseMs)
    const stillHeld = new Set<string>(states.map((s) => s.id))
    for (const state of states) if (state.cancelRequested) yield* stop(state.id, "cancel")
    // a job missing from the answer was rescued by someone else: our run of it must stop
    for (const id of ids) if (!stillHeld.has(id) && held.has(id)) yield* stop(id, "lease_lost")
  }).pipe(
    Effect.catchCause((cause) => Effect.logWarning("renewing leases failed", Cause.pretty(cause))),
    Effect.repeat(Schedule.spaced(config.renewInterval)),
    Effect.annotateLogs({ module: "WorkerPool", fiber: "lease-renewal" })
  )

  const servesQueue = (queue: string) => config.queues === undefined || config.queues.includes(queue)
  /** `queue` (jobs ready now) or `queue@<epoch ms>` (the earliest job that becomes ready later). */
  const onReady = (payload: string) => {
    const at = payload.lastIndexOf("@")
    const queue = at === -1 ? payload : payload.slice(0, at)
    if (!servesQueue(queue)) return Effect.void
    return at === -1 ? signal : wakeAt(Number(payload.slice(at + 1)))
  }

  const fetcher = yield* FiberHandle.make()
  yield* FiberHandle.run(fetcher, fetchLoop)
  yield* Effect.forkScoped(renewLoop)
  yield* Effect.forkScoped(Notifier.subscribe(Notifier.channels.ready, onReady, signal))
  yield* Effect.forkScoped(Notifier.subscribe(Notifier.channels.cancel, (id) => stop(id, "cancel")))

  // Shutdown: stop claiming, let running jobs finish within the grace period; closing the FiberMap
  // afterwards interrupts the rest, and `settle` releases them to the queue.
  yield* Effect.addFinalizer(() =>
    Effect.gen(function* () {
      accepting = false
      yield* FiberHandle.clear(fetcher)
      if (held.size === 0) return
      yield* Effect.logInfo(
        `shutting down: waiting up to ${Duration.format(config.shutdownGrace)} for ${held.size} jobs`
      )
      const drained = yield* FiberMap.awaitEmpty(jobs).pipe(
        Effect.ignore,
        Effect.timeoutOption(config.shutdownGrace)
      )
      if (drained._tag === "None") yield* Effect.logWarning(`grace period over: releasing ${held.size} jobs`)
      yield* FiberMap.clear(jobs)
    }).pipe(Effect.annotateLogs({ module: "WorkerPool" }))
  )

  yield* Effect.logInfo(
    `worker ${workerId} started: concurrency ${config.concurrency}, queues ${config.queues?.join(",") ?? "all"}`
  ).pipe(Effect.annotateLogs({ module: "WorkerPool" }))

  return {
    workerId,
    /** Ids of the jobs this worker is running now. */
    running: Effect.sync(() => [...held.keys()]),
    /** Wakes the fetch fiber now (an in-process enqueue need not wait for NOTIFY). */
    wake: signal
  }
})

export class WorkerPool extends Context.Service<WorkerPool, Effect.Success<typeof make>>()(
  "jobq/WorkerPool"
) {
  /** Runs while the layer's scope is open; closing it drains and stops the pool. */
  static readonly layer = Layer.effect(WorkerPool, make)
}
