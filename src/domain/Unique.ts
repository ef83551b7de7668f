/**
 * Unique jobs over a window (`unique` on an enqueue): what a job is compared by, over which period of its
 * `runAt`, and which states of an earlier job make a new one a duplicate. Schemas and pure rules only; the
 * key and the lookups live in `queue/Uniqueness.ts`, the guarantee in a partial unique index (migration 0004).
 */
import { Schema } from "effect"

/** At most this many named payload fields (`payload.<name>`) in `by`. */
export const maxUniqueFields = 8
/** A named field is 1 to this many characters of A-Z a-z 0-9 _ - (top-level fields only). */
export const maxUniqueFieldLength = 64
/** A period from one second to 366 days. */
export const minUniquePeriodMs = 1000
export const maxUniquePeriodMs = 366 * 24 * 3600 * 1000

/** What `by` defaults to: the same kind, in the same queue, with the same payload. */
export const defaultUniqueBy: ReadonlyArray<string> = ["kind", "queue", "payload"]
/**
 * The states a unique job always counts in, and the default. Because a counted job can only go from one of
 * these to another state, a job never enters a counted state while another holds its slot, except by an
 * explicit retry (which answers 409 then): no settlement can collide.
 */
export const requiredUniqueStates: ReadonlyArray<UniqueState> = ["queued", "retrying", "running"]

/** The states a unique slot can count in: every state but `blocked` (a flow's job is never unique). */
export const UniqueState = Schema.Literals([
  "queued",
  "running",
  "succeeded",
  "retrying",
  "failed_permanent",
  "cancelled"
])
export type UniqueState = typeof UniqueState.Type

/** Each state's bit in `jobs.unique_states`; the same numbers as `jobq_unique_counts` in migration 0004. */
export const stateBits: Readonly<Record<UniqueState, number>> = {
  queued: 1,
  running: 2,
  succeeded: 4,
  retrying: 8,
  failed_permanent: 16,
  cancelled: 32
}
export const stateMask = (states: ReadonlyArray<UniqueState>) =>
  states.reduce((mask, state) => mask | stateBits[state], 0)

const unitMs: Readonly<Record<string, number>> = {
  second: 1000,
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000
}
const periodPattern = /^([1-9]\d{0,8}) (second|minute|hour|day)s?$/

/** A period's length in milliseconds, or why the text names none in range. */
export const parsePeriodMs = (text: string): number | string => {
  const match = periodPattern.exec(text)
  if (match === null) return `Expected a period such as "30 seconds", "15 minutes", "1 hour" or "7 days"`
  const ms = Number(match[1]) * unitMs[match[2]!]!
  return ms >= minUniquePeriodMs && ms <= maxUniquePeriodMs
    ? ms
    : `Expected a period from 1 second to ${maxUniquePeriodMs / 86_400_000} days`
}

export const UniquePart = Schema.String.pipe(
  Schema.check(
    Schema.isPattern(
      new RegExp(`^(?:kind|queue|payload|payload\\.[A-Za-z0-9_-]{1,${maxUniqueFieldLength}})$`, "u"),
      {
        message: `Expected "kind", "queue", "payload" or "payload.<field>" (a top-level field: 1-${maxUniqueFieldLength} characters of A-Z a-z 0-9 _ -)`
      }
    )
  ),
  Schema.annotate({ description: `"kind", "queue", "payload" (the whole payload) or "payload.<field>"` })
)

const fewFields = Schema.makeFilter<ReadonlyArray<string>>(
  (parts) =>
    parts.filter((part) => part.startsWith("payload.")).length > maxUniqueFields
      ? `Expected at most ${maxUniqueFields} named payload fields`
      : undefined,
  { description: `at most ${maxUniqueFields} named payload fields` }
)

const countsRequired = Schema.makeFilter<ReadonlyArray<UniqueState>>(
  (states) => {
    const missing = requiredUniqueStates.filter((state) => !states.includes(state))
    return missing.length === 0 ? undefined : `Expected the states to include ${missing.join(", ")}`
  },
  { description: `must include ${requiredUniqueStates.join(", ")}` }
)

export const UniquePeriod = Schema.String.pipe(
  Schema.check(
    Schema.makeFilter(
      (text: string) => {
        const parsed = parsePeriodMs(text)
        return typeof parsed === "string" ? parsed : undefined
      },
      { description: `"<n> second|minute|hour|day(s)", from 1 second to 366 days` }
    )
  ),
  Schema.annotate({ description: 'A window the job\'s runAt is bucketed on, such as "1 hour"' })
)

export const UniqueOptions = Schema.Struct({
  by: Schema.optionalKey(
    Schema.Array(UniquePart)
      .check(Schema.isBetweenLength(1, 3 + maxUniqueFields))
      .check(fewFields)
      .annotate({ description: `What makes two jobs the same; default ${JSON.stringify(defaultUniqueBy)}` })
  ),
  period: Schema.optionalKey(UniquePeriod),
  states: Schema.optionalKey(
    Schema.Array(UniqueState)
      .check(Schema.isBetweenLength(3, 6))
      .check(countsRequired)
      .annotate({
        description: `States of an earlier job that make this one a duplicate; default and minimum ${JSON.stringify(requiredUniqueStates)}`
      })
  )
}).annotate({
  identifier: "UniqueOptions",
  description:
    "Enqueue at most one such job: while a job with the same parts (in the same period of runAt) is in one of the states, an enqueue answers that job with duplicate: true"
})
export type UniqueOptions = typeof UniqueOptions.Type
