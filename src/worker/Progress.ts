/**
 * Progress reports of one running job: checked at once (JSON, `maxProgressBytes`, `maxProgressDepth`),
 * written later by a timer fiber, at most one write a second (the latest value; the first a second after
 * the first report), and the last value before the job settles (`flush`). A report never waits for the database, and a job that reports nothing costs
 * nothing: the state is made by the first report.
 */
import { Cause, Effect, Fiber } from "effect"
import type { SqlError } from "effect/sql"
import { InvalidProgress, maxProgressBytes, maxProgressDepth } from "../domain/JobKind.ts"
import { depthIssue } from "../queue/nesting.ts"
import { jsonbText } from "../queue/nul.ts"

/** The shortest time between two writes of one job's progress. */
export const progressIntervalMs = 1000

/** JSON text to store, or why the value cannot be progress. */
export const progressText = (value: unknown): string | InvalidProgress => {
  const tooDeep = depthIssue(value, maxProgressDepth)
  if (tooDeep !== undefined) {
    return new InvalidProgress({ message: `progress nests deeper than ${maxProgressDepth} levels` })
  }
  let text: string | undefined
  try {
    text = value === undefined ? undefined : jsonbText(value)
  } catch (error) {
    return new InvalidProgress({ message: `progress is not JSON: ${String(error)}` })
  }
  if (text === undefined) return new InvalidProgress({ message: "progress is not JSON: undefined" })
  const bytes = Buffer.byteLength(text)
  return bytes > maxProgressBytes
    ? new InvalidProgress({ message: `progress is ${bytes} bytes of JSON; at most ${maxProgressBytes}` })
    : text
}

export interface ProgressReporter {
  readonly report: (value: unknown) => Effect.Effect<void, InvalidProgress>
  /** Writes the value still pending, if any (call before settling). */
  readonly flush: Effect.Effect<void>
}

/**
 * `write` stores one value (guarded by the lease); `fork` starts the timer fiber, whose failure is only
 * logged. Not thread-safe beyond one job's fibers, which is all it serves.
 */
export const make = (
  write: (text: string) => Effect.Effect<unknown, SqlError.SqlError>,
  fork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>
): ProgressReporter => {
  let pending: string | undefined
  // made by the job's first report, which waits a second like any other: a job shorter than that writes
  // its progress once, before it settles (the drain bench's 500 ms jobs paid two writes each otherwise)
  let lastWriteAt = Date.now()
  let timer: Fiber.Fiber<void> | undefined
  /** Set by `flush`: the handler is done, and no timer starts again. */
  let closed = false

  const writePending = Effect.suspend(() => {
    const text = pending
    if (text === undefined) return Effect.void
    return write(text).pipe(
      Effect.tap(() =>
        Effect.sync(() => {
          lastWriteAt = Date.now()
          if (pending === text) pending = undefined
        })
      ),
      Effect.catchCause((cause) => Effect.logWarning("could not write progress", Cause.pretty(cause)))
    )
  })

  const schedule = (): void => {
    if (closed) return
    const waitMs = Math.max(0, lastWriteAt + progressIntervalMs - Date.now())
    timer = fork(
      Effect.sleep(waitMs).pipe(
        Effect.andThen(writePending),
        Effect.ensuring(
          Effect.sync(() => {
            timer = undefined
            // a value reported while this one was being written waits for the next slot
            if (pending !== undefined) schedule()
          })
        )
      )
    )
  }

  const report = (value: unknown) =>
    Effect.suspend(() => {
      const text = progressText(value)
      if (typeof text !== "string") return Effect.fail(text)
      pending = text
      if (timer === undefined) schedule()
      return Effect.void
    })

  const flush = Effect.suspend(() => {
    closed = true
    if (timer === undefined && pending === undefined) return Effect.void
    return (timer === undefined ? Effect.void : Fiber.interrupt(timer)).pipe(Effect.andThen(writePending))
  })

  return { report, flush }
}
