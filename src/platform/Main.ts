/**
 * How an entry program runs as a process: its main effect in a fiber, SIGINT and SIGTERM, and how it ends.
 *
 * - The first SIGINT or SIGTERM interrupts the main fiber: its layers close in reverse order, so a worker
 *   drains (running jobs get `WORKER_SHUTDOWN_GRACE` to finish).
 * - A second one asks for a stop now (`StopNow`): the worker interrupts its running jobs at once and
 *   releases them to the queue without spending an attempt, and the process exits as soon as that is done.
 *   Effect's `runMain` ignores the second signal, so Ctrl-C twice waited the whole grace period anyway.
 * - A third exits at once (code 130), whatever is still running; leases then expire and the rescuer acts.
 *
 * A program that cannot start (a setting it cannot use, a port in use, a locked data directory) prints one
 * line on stderr saying why, without a stack trace, and exits 1. A defect (a bug) still prints its cause
 * in full.
 */
import { Cause, Config, Context, Deferred, Effect, Exit, Runtime } from "effect"

/** Completes when the process was asked to stop now (a second signal); never, by default. */
export const StopNow = Context.Reference<Effect.Effect<void>>("jobq/platform/StopNow", {
  defaultValue: () => Effect.never
})

/** A failure the program reports as one line: what went wrong and, where it helps, what to do. */
export const describeFailure = (error: unknown): string => {
  if (error instanceof Config.ConfigError) {
    const cause = error.cause as { readonly _tag?: string; readonly message?: string } | undefined
    const message = (cause?.message ?? error.message).replace(/\s*\n\s*/g, " ")
    return cause?._tag === "SourceError" ? message : `invalid setting: ${message}`
  }
  if (error instanceof Error) return error.message
  return String(error)
}

const report = (cause: Cause.Cause<unknown>) => {
  const failure = Cause.findErrorOption(cause)
  // a typed failure is an expected one (bad settings, a port in use): its message says it all
  if (failure._tag === "Some" && !Cause.hasDies(cause)) console.error(describeFailure(failure.value))
  else console.error(Cause.pretty(cause))
}

/** Runs `program` as the process's main fiber (see the module comment). */
export const runMain = <A, E>(program: Effect.Effect<A, E>): void => {
  const stopNow = Deferred.makeUnsafe<void>()
  const run = Runtime.makeRunMain(({ fiber, teardown }) => {
    let signals = 0
    const onSignal = (signal: NodeJS.Signals) => {
      signals++
      if (signals === 1) {
        fiber.interruptUnsafe(fiber.id)
      } else if (signals === 2) {
        console.error(`${signal} again: stopping now (a third one exits at once)`)
        Deferred.doneUnsafe(stopNow, Exit.void)
      } else {
        process.exit(130)
      }
    }
    fiber.addObserver((exit) => {
      process.removeListener("SIGINT", onSignal)
      process.removeListener("SIGTERM", onSignal)
      teardown(exit, (code) => {
        if (signals > 0 || code !== 0) process.exit(code)
      })
    })
    process.on("SIGINT", onSignal)
    process.on("SIGTERM", onSignal)
  })
  run(program.pipe(Effect.provideService(StopNow, Deferred.await(stopNow))), {
    disableErrorReporting: true,
    teardown: (exit, onExit) => {
      if (Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)) {
        report(exit.cause)
        return onExit(1)
      }
      Runtime.defaultTeardown(exit, onExit)
    }
  })
}
