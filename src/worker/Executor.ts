/**
 * Runs one attempt of one job: find its kind, decode its payload, run the handler under the kind's
 * timeout. The result is an `Exit`; `Settlement` turns that into the job's next state. Interrupting the
 * fiber that runs this is how a job is cancelled or stopped: the handler's finalizers run.
 */
import { Cause, Duration, Effect, Schema } from "effect"
import { issuesOf, type JobKinds, PermanentError } from "../domain/JobKind.ts"
import type { ClaimedJob } from "../queue/JobRepo.ts"

/** A failed attempt, with what to store as its error and whether retrying can help. */
export class AttemptFailed extends Schema.TaggedError<AttemptFailed>()("AttemptFailed", {
  message: Schema.String,
  permanent: Schema.Boolean
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

export const run = (kinds: JobKinds["Service"], job: ClaimedJob): Effect.Effect<unknown, AttemptFailed> =>
  Effect.gen(function* () {
    const kind = kinds.get(job.kind)
    if (kind === undefined) {
      return yield* new AttemptFailed({
        message: `no handler for job kind "${job.kind}" in this worker (known: ${kinds.names.join(", ")})`,
        permanent: true
      })
    }
    const payload = yield* Schema.decodeUnknownEffect(kind.payload)(job.payload, { errors: "all" }).pipe(
      Effect.mapError(
        (error) =>
          new AttemptFailed({
            message: `payload no longer matches kind "${job.kind}": ${JSON.stringify(issuesOf(error))}`,
            permanent: true
          })
      )
    )
    const attempt = kind.handler(payload, { job, attempt: job.attempts })
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
    return yield* timed.pipe(
      Effect.catchCause((cause) => {
        if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
        const error = Cause.squash(cause)
        if (error instanceof AttemptFailed) return Effect.fail(error)
        return Effect.fail(
          new AttemptFailed({
            message: Cause.hasDies(cause) ? `defect: ${describe(error)}` : describe(error),
            permanent: error instanceof PermanentError
          })
        )
      })
    )
  })
