/** The job as stored and as shown: its id, its seven states, and what an enqueue asks for. */
import { Schema, SchemaTransformation } from "effect"
import type { UniqueOptions } from "./Unique.ts"

export const JobId = Schema.String.pipe(
  Schema.check(Schema.isUUID()),
  Schema.brand("JobId"),
  Schema.annotate({ description: "Job id (UUIDv7, time-ordered)" })
)
export type JobId = typeof JobId.Type
/** Whether a string can name a job at all (a malformed id is simply not found). */
export const isJobId: (id: string) => id is JobId = Schema.is(JobId)

export const JobStatus = Schema.Literals([
  "queued",
  "running",
  "succeeded",
  "retrying",
  "failed_permanent",
  "cancelled",
  "blocked"
]).annotate({ description: "blocked: in a flow, waiting for its dependencies to succeed (never claimed)" })
export type JobStatus = typeof JobStatus.Type

export const terminalStatuses: ReadonlyArray<JobStatus> = ["succeeded", "failed_permanent", "cancelled"]
export const isTerminal = (status: JobStatus) => terminalStatuses.includes(status)

// the `u` flag lets the pattern into the OpenAPI document (Effect exports only unicode-mode patterns)
// not dots alone: `.` and `..` are path segments URLs resolve away, so such a queue could be made but never
// addressed (`/queues/..` is `/`); no lookahead, which some generated clients' regex engines lack
export const QueueName = Schema.String.pipe(
  // one issue for a name that breaks both: the pattern is not tried once the length failed
  Schema.check(Schema.isBetweenLength(1, 128).abort()),
  Schema.check(Schema.isPattern(/^[A-Za-z0-9_.:-]*[A-Za-z0-9_:-][A-Za-z0-9_.:-]*$/u)),
  Schema.annotate({
    description: "Queue name: 1-128 characters of A-Z a-z 0-9 _ . : -, not dots alone"
  })
)
export const KindName = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^[A-Za-z0-9_.:-]{1,128}$/u)),
  Schema.annotate({ description: "Job kind name" })
)
/**
 * An idempotency key: 1-255 printable ASCII characters (0x20-0x7E), neither starting nor ending with a
 * space; the same rule in the `Idempotency-Key` header and the `idempotencyKey` field. A header value is
 * bytes that servers read as Latin-1, so a UTF-8 key would arrive garbled (and count each byte as a
 * character); ASCII reads the same everywhere, so a key sent in the header and in the body is one key, of
 * one length. (Postgres could not store a NUL anyway, nor tell lone surrogates apart.)
 */
export const IdempotencyKey = Schema.String.pipe(
  Schema.check(Schema.isBetweenLength(1, 255)),
  Schema.check(
    Schema.isPattern(/^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/u, {
      message: "Expected printable ASCII (0x20-0x7E), not starting or ending with a space"
    })
  ),
  Schema.annotate({
    description: "Client-chosen key that makes an enqueue safe to repeat: 1-255 printable ASCII characters"
  })
)
export const Priority = Schema.Int.pipe(
  Schema.check(Schema.isBetween({ minimum: -32768, maximum: 32767 })),
  Schema.annotate({ description: "Lower runs first; default 0" })
)
export const MaxAttempts = Schema.Int.pipe(
  Schema.check(Schema.isBetween({ minimum: 1, maximum: 1000 })),
  Schema.annotate({ description: "Attempts before the job fails permanently; default 5" })
)

/** The earliest and latest instants a date-time input may name (`runAt`). */
export const earliestInstant = new Date("1970-01-01T00:00:00.000Z")
export const latestInstant = new Date("9999-12-31T23:59:59.999Z")

const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/
const daysIn = (year: number, month: number) =>
  month === 2
    ? year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
      ? 29
      : 28
    : [4, 6, 9, 11].includes(month)
      ? 30
      : 31

/** The instant an RFC 3339 date-time names, or why it names none. */
const parseInstant = (text: string): Date | string => {
  const match = rfc3339.exec(text)
  if (match === null) {
    return "Expected an RFC 3339 date-time with an offset, such as 2030-01-01T00:00:00Z or 2030-01-01T01:00:00+01:00"
  }
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number
  ]
  const [offsetHours, offsetMinutes] = [Number(match[9] ?? 0), Number(match[10] ?? 0)]
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) {
    return `Expected a calendar date: ${match[1]}-${match[2]}-${match[3]} does not exist`
  }
  if (hour > 23 || minute > 59 || second > 59)
    return `Expected a time of day: ${match[4]}:${match[5]}:${match[6]} is not one`
  if (offsetHours > 23 || offsetMinutes > 59)
    return `Expected an offset within ±23:59, got ${match[8]}${match[9]}:${match[10]}`
  // years below 100 are out of range whatever the offset (and Date.UTC would read them as 19xx)
  if (year >= 100) {
    const millis = Math.floor(Number(`0${match[7] ?? ""}`) * 1000)
    const offset = (match[8] === "-" ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000
    const instant = Date.UTC(year, month - 1, day, hour, minute, second, millis) - offset
    if (instant >= earliestInstant.getTime() && instant <= latestInstant.getTime()) return new Date(instant)
  }
  return `Expected an instant from ${earliestInstant.toISOString()} to ${latestInstant.toISOString()}`
}

/**
 * An instant as an RFC 3339 date-time with an explicit offset (`Z` or `±hh:mm`), decoded to a `Date`:
 * nothing else, so no date is rolled over (`2030-02-30`), no local time read in the server's zone, no other
 * format guessed at. Fractions of a second beyond milliseconds are truncated; a leap second (`:60`) is
 * refused; instants from 1970 to 9999 (UTC) only. Encodes as `toISOString()`. `description` says what the
 * instant means; the document shows it with `format: date-time`.
 */
export const instant = (description: string) =>
  Schema.String.pipe(
    Schema.check(
      Schema.makeFilter(
        (text: string) => {
          const parsed = parseInstant(text)
          return typeof parsed === "string" ? parsed : undefined
        },
        {
          description: `${description}: an RFC 3339 date-time with an offset (Z or ±hh:mm), 1970 to 9999`,
          toJsonSchema: () => ({ format: "date-time" })
        }
      )
    ),
    Schema.decodeTo(
      Schema.Date,
      SchemaTransformation.transform({
        decode: (text: string) => parseInstant(text) as Date,
        encode: (date: Date) => date.toISOString()
      })
    )
  )

export const JobErrorEntry = Schema.Struct({
  attempt: Schema.Int,
  at: Schema.String.annotate({ description: "When the attempt ended (ISO 8601, UTC)" }),
  error: Schema.String,
  retryDelayMs: Schema.NullOr(Schema.Int),
  dueAt: Schema.optionalKey(Schema.String).annotate({
    description:
      "When the attempt was due (its run_at: the enqueue's time or delay, or the back-off's end); absent for an attempt that never ran (a flow's dependency failed) and in entries written before it was recorded"
  }),
  startedAt: Schema.optionalKey(Schema.String).annotate({
    description:
      "When a worker claimed the job for the attempt; absent for an attempt that never ran and in entries written before it was recorded"
  })
}).annotate({ description: "One ended attempt: wait = startedAt - dueAt, run = at - startedAt" })
export type JobErrorEntry = typeof JobErrorEntry.Type

export const Job = Schema.Struct({
  id: JobId,
  queue: Schema.String,
  kind: Schema.String,
  payload: Schema.Json.annotate({ description: "The payload, as its kind's schema encodes it" }),
  status: JobStatus,
  priority: Priority,
  attempts: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)).annotate({
    description: "Attempts started so far"
  }),
  maxAttempts: MaxAttempts,
  runAt: Schema.Date,
  leaseOwner: Schema.NullOr(Schema.String).annotate({
    description: "The worker holding the job while it runs (its id in GET /workers); null otherwise"
  }),
  leaseExpiresAt: Schema.NullOr(Schema.Date).annotate({
    description:
      "When the job's own lease runs out; null while its worker's heartbeat holds it (every worker since " +
      "migration 0013: the worker's lease covers all its jobs, see GET /workers)"
  }),
  cancelRequestedAt: Schema.NullOr(Schema.Date),
  idempotencyKey: Schema.NullOr(Schema.String),
  lastError: Schema.NullOr(Schema.String),
  errors: Schema.Array(JobErrorEntry),
  result: Schema.Json.annotate({
    description: "What the handler succeeded with (any JSON); null until the job succeeds"
  }),
  snoozes: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)).annotate({
    description: "How often its handler snoozed (each snooze ended an attempt without spending it)"
  }),
  progress: Schema.Json.annotate({
    description: "What its handler last reported as progress (small JSON); null when it reported none"
  }),
  createdAt: Schema.Date,
  startedAt: Schema.NullOr(Schema.Date),
  finishedAt: Schema.NullOr(Schema.Date),
  updatedAt: Schema.Date,
  flowId: Schema.NullOr(Schema.String).annotate({
    description: "The flow the job belongs to (GET /flows/{id}); null outside flows"
  }),
  flowName: Schema.NullOr(Schema.String).annotate({
    description: "The job's name within its flow; null outside flows"
  }),
  traceId: Schema.NullOr(Schema.String).annotate({
    description:
      "The trace id of the request that enqueued it (from its W3C traceparent) when tracing was on; null otherwise"
  })
}).annotate({ identifier: "Job" })
export type Job = typeof Job.Type

/** What an enqueue asks for, after HTTP or library input was decoded. */
export interface NewJob {
  readonly kind: string
  readonly payload: unknown
  readonly queue?: string | undefined
  readonly priority?: number | undefined
  readonly runAt?: Date | undefined
  readonly delayMs?: number | undefined
  readonly maxAttempts?: number | undefined
  readonly idempotencyKey?: string | undefined
  /** At most one such job at a time (see `UniqueOptions`); checked by the queue. */
  readonly unique?: UniqueOptions | undefined
  readonly traceContext?: Readonly<Record<string, string>> | undefined
}

/**
 * An enqueue's answer: the job, and whether this call created it. Not created: an idempotent repeat
 * (`duplicate` false) or a duplicate of a unique job (`duplicate` true; `job` is the one holding the slot).
 */
export interface Enqueued {
  readonly job: Job
  readonly created: boolean
  readonly duplicate: boolean
}
