/**
 * Turns the `Exit` of a job's attempt into the job's next state (STYLE: settle a job by its Exit):
 * success -> succeeded (batched through the Completer); failure -> retrying or failed_permanent;
 * interruption -> cancelled (a cancel was requested), nothing (the lease was lost) or released to the
 * queue without spending the attempt (shutdown).
 */
import { Cause, Effect, Exit } from "effect"
import type { RetryConfig } from "../Config.ts"
import { maxSnoozes } from "../domain/JobKind.ts"
import type { ClaimedJob, JobRepo } from "../queue/JobRepo.ts"
import { nextDelayMs } from "../queue/Retry.ts"
import { encodeResult } from "../queue/results.ts"
import type * as Completer from "./Completer.ts"
import { AttemptFailed } from "./Executor.ts"
import type { JobCounter, JobMetrics } from "./WorkerMetrics.ts"

/** Why a job was stopped before it finished; none means shutdown. */
export type StopReason = "cancel" | "lease_lost"

export interface SettlementDeps {
  readonly workerId: string
  readonly repo: JobRepo["Service"]
  readonly retry: RetryConfig["Service"]
  readonly completer: Effect.Success<ReturnType<typeof Completer.make>>
  readonly metrics: (job: ClaimedJob) => JobMetrics
  /** Called once the job is no longer this worker's (settled, or found not held). */
  readonly onSettled: (job: ClaimedJob) => void
  /**
   * Called for a job this worker gives up on without having settled it: stopped as its lease was lost, or
   * its settlement failed. Its worker's row would hold it while the worker lives, so it must be handed back.
   */
  readonly onAbandoned: (job: ClaimedJob) => void
  /** Called with the run_at of a retry this worker scheduled. */
  readonly onRetryScheduled: (runAt: Date) => void
  /** Whether a succeeded job's result is stored (not with `JOB_RETENTION=0`, outside flows): else it is not encoded. */
  readonly keepsResult: (job: ClaimedJob) => boolean
}

export const outcomeOf = (exit: Exit.Exit<unknown, AttemptFailed>, reason: StopReason | undefined) =>
  Exit.isSuccess(exit) ? "succeeded" : Cause.hasInterruptsOnly(exit.cause) ? (reason ?? "released") : "failed"

export const make = (deps: SettlementDeps) => {
  const { workerId, repo, retry, completer } = deps
  const count = (counter: JobCounter, job: ClaimedJob) => Effect.sync(() => deps.metrics(job)[counter].add(1))

  const snoozed = (job: ClaimedJob, delayMs: number) =>
    Effect.gen(function* () {
      const after = yield* repo.snooze(workerId, job.id, delayMs, maxSnoozes)
      if (after === undefined) return yield* count("leaseLost", job)
      if (after.status === "queued" || after.status === "retrying") {
        yield* count("snoozed", job)
        deps.onRetryScheduled(after.runAt)
        return yield* Effect.logInfo(`snoozed for ${delayMs} ms (snooze ${after.snoozes})`)
      }
      yield* count(after.status === "cancelled" ? "cancelled" : "failed", job)
      if (after.status === "failed_permanent")
        yield* Effect.logWarning(after.lastError ?? "snoozed too often")
    })

  const failure = (job: ClaimedJob, error: AttemptFailed) =>
    Effect.gen(function* () {
      const retryDelayMs = yield* nextDelayMs(retry, job.errors.at(-1)?.retryDelayMs ?? null)
      const after = yield* repo.fail(workerId, {
        id: job.id,
        error: error.message,
        retryDelayMs,
        permanent: error.permanent
      })
      if (after === undefined) return yield* count("leaseLost", job)
      yield* count(
        after.status === "retrying" ? "retried" : after.status === "cancelled" ? "cancelled" : "failed",
        job
      )
      if (after.status === "retrying") deps.onRetryScheduled(after.runAt)
      // a retry is routine; a job that ends failed needs someone to look at it
      const log = after.status === "failed_permanent" ? Effect.logWarning : Effect.logInfo
      yield* log(`attempt ${job.attempts} failed; job is ${after.status}`, error.message)
    })

  /** A job stopped before or while it ran. */
  const stopped = (job: ClaimedJob, reason: StopReason | undefined) =>
    Effect.gen(function* () {
      if (reason === "lease_lost") {
        deps.onAbandoned(job)
        yield* count("leaseLost", job)
        return yield* Effect.logWarning("lost the lease; stopped the job without settling it")
      }
      if (reason === "cancel") {
        if (yield* repo.settleCancelled(workerId, job.id)) {
          yield* count("cancelled", job)
          yield* Effect.logInfo("cancelled on request")
        }
        return
      }
      if ((yield* repo.release(workerId, [job.id])).length > 0) {
        yield* count("released", job)
        yield* Effect.logInfo("released to the queue at shutdown")
      }
    })

  // a settlement lost to a database error hands the job back to the queue (as the rescuer would); it must
  // never kill the pool
  const guarded = (job: ClaimedJob, effect: Effect.Effect<void, unknown>) =>
    effect.pipe(
      Effect.catchCause((cause) =>
        Effect.andThen(
          Effect.sync(() => deps.onAbandoned(job)),
          Effect.logError("could not settle job; handing it back to the queue", Cause.pretty(cause))
        )
      ),
      Effect.ensuring(Effect.sync(() => deps.onSettled(job)))
    )

  /** Settles an attempt by its exit. A success only queues the completion: the slot frees at once. */
  const settle = (
    job: ClaimedJob,
    exit: Exit.Exit<unknown, AttemptFailed>,
    reason: StopReason | undefined
  ) => {
    if (Exit.isSuccess(exit)) {
      const result = deps.keepsResult(job) ? encodeResult(exit.value) : null
      if (result !== null && "unstorable" in result)
        return guarded(job, failure(job, new AttemptFailed({ message: result.unstorable, permanent: true })))
      return completer.submit(job.id, result, (held) => {
        deps.metrics(job)[held ? "succeeded" : "leaseLost"].add(1)
        // not completed: the lease was lost, or the completion kept failing (then the job is handed back)
        if (!held) deps.onAbandoned(job)
        deps.onSettled(job)
      })
    }
    if (Cause.hasInterruptsOnly(exit.cause)) return guarded(job, stopped(job, reason))
    const error = Cause.findErrorOption(exit.cause)
    return guarded(
      job,
      error._tag === "Some"
        ? error.value.snoozeMs !== undefined
          ? snoozed(job, error.value.snoozeMs)
          : failure(job, error.value)
        : Effect.logError("job attempt ended without a result", Cause.pretty(exit.cause))
    )
  }

  /** Settles a job that was stopped (cancelled, lease lost) before it started. */
  const settleUnstarted = (job: ClaimedJob, reason: StopReason) => guarded(job, stopped(job, reason))

  return { settle, settleUnstarted }
}
