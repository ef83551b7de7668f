/**
 * Decorrelated jitter (AWS Architecture Blog, "Exponential Backoff and Jitter"):
 * `sleep = min(cap, random_between(base, previous * 3))`, starting from `previous = base`.
 * One step function serves both the in-process `Schedule` (the worker's reconnect back-off) and the
 * persisted `run_at` of a failed job, so both follow the same policy. Seed `Random` to reproduce.
 */
import { Duration, Effect, Random, Schedule } from "effect"

export interface JitterBounds {
  readonly base: Duration.Input
  readonly cap: Duration.Input
}

const millis = (input: Duration.Input) => Duration.toMillis(Duration.fromInputUnsafe(input))

/** The delay after `previousMs` (omit it for the first retry), in whole milliseconds. */
export const nextDelayMs = (bounds: JitterBounds, previousMs?: number | null) => {
  const base = Math.max(0, Math.round(millis(bounds.base)))
  const cap = Math.max(base, Math.round(millis(bounds.cap)))
  const previous = Math.max(base, previousMs ?? base)
  return Random.nextBetween(base, Math.max(base, previous * 3)).pipe(
    Effect.map((sample) => Math.min(cap, Math.round(sample)))
  )
}

/** The same policy as a `Schedule`: recurs forever, outputs each delay. Bound it with `Schedule.upTo`/`take`. */
export const decorrelatedJitter = (bounds: JitterBounds) =>
  Schedule.fromStep(
    Effect.sync(() => {
      let previous: number | undefined
      return (_now: number, _input: unknown) =>
        Effect.map(nextDelayMs(bounds, previous), (ms) => {
          previous = ms
          const delay = Duration.millis(ms)
          return [delay, delay] as [Duration.Duration, Duration.Duration]
        })
    })
  )

/** The first `n` delays a schedule would sleep, without sleeping (for tests and docs). */
export const firstDelays = <Input>(
  schedule: Schedule.Schedule<Duration.Duration, Input>,
  input: Input,
  n: number
) =>
  Effect.gen(function* () {
    const step = yield* Schedule.toStep(schedule)
    const delays: Array<number> = []
    for (let i = 0; i < n; i++) {
      const [, delay] = yield* step(0, input)
      delays.push(Duration.toMillis(delay))
    }
    return delays
  })
