/**
 * Runs one attempt of one job: find its kind, decode its payload, run the handler under the kind's
 * timeout. The result is an `Exit`; `Settlement` turns that into the job's next state. Interrupting the
 * fiber that runs this is how a job is cancelled or stopped: the handler's finalizers run.
 */
import { Cause, Duration, Effect, Exit, Schema } from "effect"
import { issuesOf, type JobContext, type JobKinds, JobSnoozed, PermanentError } from "../domain/JobKind.ts"
import type { ClaimedJob } from "../queue/JobRepo.ts"

/** A failed attempt, with what to store as its error and whether retrying can help. */
export class AttemptFailed extends Schema.TaggedError<AttemptFailed>()("AttemptFailed", {
  message: Schema.String,
  permanent: Schema.Boolean,
  /** Set when the handler snoozed (`snooze`): run again after this long, the attempt not spent. */
  snoozeMs: Schema.optional(Schema.Number)
}) {}

const describe = (error: unknown): string => {
  if (error instanceof Error) {
    const tag = (error as { _tag?: unknown })._tag
    return typeof tag === "string" && tag !== error.name
      ? `${tag}: ${error.message}`
      : `${error.name}: ${error.message}`
  }
  if (typeof error === "string") return error
  try {
    return JSON.stringify(error) ?? String(error)
  } catch {
    return String(error)
  }
}

const noProgress = () => Effect.void
const noParents: Readonly<Record<string, unknown>> = Object.freeze({})

export const run = (
  kinds: JobKinds["Service"],
  job: ClaimedJob,
  progress: JobContext["progress"] = noProgress
): Effect.Effect<unknown, AttemptFailed> =>
  Effect.suspend(() => {
    const kind = kinds.get(job.kind)
    if (kind === undefined) {
      return Effect.fail(
        new AttemptFailed({
          message: `no handler for job kind "${job.kind}" in this worker (known: ${kinds.names.join(", ")})`,
          permanent: true
        })
      )
    }
    // decoded in plain code: this runs for every job
    const decoded = Schema.decodeUnknownExit(kind.payload)(job.payload, { errors: "all" })
    if (Exit.isFailure(decoded)) {
      const error = Cause.findErrorOption(decoded.cause)
      return Effect.fail(
        new AttemptFailed({
          message: `payload no longer matches kind "${job.kind}": ${
            error._tag === "Some" ? JSON.stringify(issuesOf(error.value)) : Cause.pretty(decoded.cause)
          }`,
          permanent: true
        })
      )
    }
    const attempt = kind.handler(decoded.value, {
      job,
      attempt: job.attempts,
      progress,
      parents: job.parents ?? noParents
    })
    const timed =
      kind.timeout === undefined
        ? attempt
        : attempt.pipe(
            Effect.timeoutOrElse({
              duration: kind.timeout,
              orElse: () =>
                Effect.fail(
                  new AttemptFailed({
                    message: `timed out after ${Duration.format(Duration.fromInputUnsafe(kind.timeout!))}`,
                    permanent: false
                  })
                )
            })
          )
    return timed.pipe(
      Effect.catchCause((cause) => {
        if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
        const error = Cause.squash(cause)
        if (error instanceof AttemptFailed) return Effect.fail(error)
        if (error instanceof JobSnoozed) {
          return Effect.fail(
            new AttemptFailed({ message: error.message, permanent: false, snoozeMs: error.delayMs })
          )
        }
        return Effect.fail(
          new AttemptFailed({
            message: Cause.hasDies(cause) ? `defect: ${describe(error)}` : describe(error),
            permanent: error instanceof PermanentError
          })
        )
      })
    )
  })
