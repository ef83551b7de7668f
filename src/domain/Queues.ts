/** A queue as an operator sees and steers it (pause, limits, counts), and a live worker process. */
import { Schema } from "effect"

/** Largest concurrency limit and rate `max` accepted. */
export const maxLimit = 1_000_000
/** Longest rate window: one day, in milliseconds. */
export const maxRateWindowMs = 24 * 3600 * 1000
export const maxPauseReasonLength = 1000
export const maxPausedByLength = 200

export const ConcurrencyLimit = Schema.Int.pipe(
  Schema.check(Schema.isBetween({ minimum: 1, maximum: maxLimit })),
  Schema.annotate({
    description: `At most this many of the queue's jobs run at once, summed over every worker (1-${maxLimit})`
  })
)

export const RateLimit = Schema.Struct({
  max: Schema.Int.pipe(
    Schema.check(Schema.isBetween({ minimum: 1, maximum: maxLimit })),
    Schema.annotate({ description: `Most jobs that may start in any window of \`per\` (1-${maxLimit})` })
  ),
  per: Schema.Int.pipe(
    Schema.check(Schema.isBetween({ minimum: 1, maximum: maxRateWindowMs })),
    Schema.annotate({ description: `The window, in milliseconds (1-${maxRateWindowMs})` })
  )
}).annotate({
  identifier: "RateLimit",
  description:
    "At most `max` of the queue's jobs start in any window of `per` milliseconds, over every worker"
})
export type RateLimit = typeof RateLimit.Type

/** A change of limits: a field left out keeps its value, null removes that limit. */
export interface LimitsChange {
  readonly concurrencyLimit?: number | null | undefined
  readonly rateLimit?: RateLimit | null | undefined
}

/**
 * Text Postgres can store as it was given: no NUL (U+0000), which `text` refuses (a 500 before this check),
 * and no lone UTF-16 surrogate, which it would silently turn into U+FFFD.
 */
const storableText = Schema.makeFilter<string>((text) =>
  text.includes("\u0000")
    ? "contains the NUL character (\\u0000), which cannot be stored"
    : /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text)
      ? "contains a lone UTF-16 surrogate, which is not Unicode and cannot be stored"
      : undefined
)

export const PauseReason = Schema.String.pipe(
  Schema.check(storableText),
  Schema.check(Schema.isBetweenLength(1, maxPauseReasonLength)),
  Schema.annotate({ description: `Why the queue is paused (1-${maxPauseReasonLength} characters)` })
)
export const PausedBy = Schema.String.pipe(
  Schema.check(storableText),
  Schema.check(Schema.isBetweenLength(1, maxPausedByLength)),
  Schema.annotate({
    description: `Who paused it, as they say (1-${maxPausedByLength} characters); the API does not check it`
  })
)

export const Pause = Schema.Struct({
  at: Schema.Date,
  by: Schema.NullOr(Schema.String),
  reason: Schema.NullOr(Schema.String)
}).annotate({ identifier: "Pause", description: "Since when the queue is paused, by whom, and why" })

export const QueueCounts = Schema.Struct({
  queued: Schema.Int,
  retrying: Schema.Int,
  running: Schema.Int,
  blocked: Schema.Int.annotate({ description: "Jobs waiting in flows for their dependencies" }),
  succeeded: Schema.NullOr(Schema.Int),
  failed_permanent: Schema.NullOr(Schema.Int),
  cancelled: Schema.NullOr(Schema.Int)
}).annotate({
  identifier: "QueueCounts",
  description:
    "Jobs by status. queued, retrying, running and blocked are counted at the request; the finished ones as of " +
    "`finishedCountedAt` (recounted by the workers' elected maintainer), null until first counted"
})

export const QueueInfo = Schema.Struct({
  name: Schema.String,
  paused: Schema.Boolean,
  pause: Schema.NullOr(Pause),
  concurrencyLimit: Schema.NullOr(Schema.Int),
  rateLimit: Schema.NullOr(RateLimit),
  counts: QueueCounts,
  finishedCountedAt: Schema.NullOr(Schema.Date),
  oldestReadyAgeSeconds: Schema.NullOr(Schema.Number).annotate({
    description: "Age of the oldest job that is ready to run and not claimed; null when none waits"
  }),
  createdAt: Schema.Date,
  updatedAt: Schema.Date
}).annotate({ identifier: "Queue" })
export type QueueInfo = typeof QueueInfo.Type

export const WorkerInfo = Schema.Struct({
  id: Schema.String,
  host: Schema.String,
  pid: Schema.Int,
  queues: Schema.NullOr(Schema.Array(Schema.String)).annotate({
    description: "The queues it serves; null: every queue"
  }),
  concurrency: Schema.Int,
  startedAt: Schema.Date,
  lastHeartbeatAt: Schema.Date,
  expiresAt: Schema.Date.annotate({
    description: "When it leaves this list unless it heartbeats again"
  }),
  running: Schema.Int.annotate({
    description: "Jobs it holds a lease on now (running, or claimed and about to start), counted when asked"
  })
}).annotate({ identifier: "Worker" })
export type WorkerInfo = typeof WorkerInfo.Type
