/** The job as stored and as shown: its id, its six states, and what an enqueue asks for. */
import { Schema } from "effect"

export const JobId = Schema.String.pipe(
  Schema.check(Schema.isUUID()),
  Schema.brand("JobId"),
  Schema.annotate({ description: "Job id (UUIDv7, time-ordered)" })
)
export type JobId = typeof JobId.Type

export const JobStatus = Schema.Literals([
  "queued",
  "running",
  "succeeded",
  "retrying",
  "failed_permanent",
  "cancelled"
])
export type JobStatus = typeof JobStatus.Type

export const terminalStatuses: ReadonlyArray<JobStatus> = ["succeeded", "failed_permanent", "cancelled"]
export const isTerminal = (status: JobStatus) => terminalStatuses.includes(status)

export const QueueName = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^[A-Za-z0-9_.:-]{1,128}$/)),
  Schema.annotate({ description: "Queue name: 1-128 characters of A-Z a-z 0-9 _ . : -" })
)
export const KindName = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^[A-Za-z0-9_.:-]{1,128}$/)),
  Schema.annotate({ description: "Job kind name" })
)
export const IdempotencyKey = Schema.String.pipe(
  Schema.check(Schema.isBetweenLength(1, 255)),
  // Postgres text cannot hold NUL, and stores a lone UTF-16 surrogate as U+FFFD (two keys would become one)
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching NUL is the point
  Schema.check(Schema.isPattern(/^(?:[^\u0000\ud800-\udfff]|[\ud800-\udbff][\udc00-\udfff])*$/)),
  Schema.annotate({
    description: "Client-chosen key that makes an enqueue safe to repeat (1-255 characters)"
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

export const JobErrorEntry = Schema.Struct({
  attempt: Schema.Int,
  at: Schema.String,
  error: Schema.String,
  retryDelayMs: Schema.NullOr(Schema.Int)
})
export type JobErrorEntry = typeof JobErrorEntry.Type

export const Job = Schema.Struct({
  id: JobId,
  queue: Schema.String,
  kind: Schema.String,
  payload: Schema.Json,
  status: JobStatus,
  priority: Schema.Int,
  attempts: Schema.Int,
  maxAttempts: Schema.Int,
  runAt: Schema.Date,
  leaseOwner: Schema.NullOr(Schema.String),
  leaseExpiresAt: Schema.NullOr(Schema.Date),
  cancelRequestedAt: Schema.NullOr(Schema.Date),
  idempotencyKey: Schema.NullOr(Schema.String),
  lastError: Schema.NullOr(Schema.String),
  errors: Schema.Array(JobErrorEntry),
  result: Schema.NullOr(Schema.Json),
  createdAt: Schema.Date,
  startedAt: Schema.NullOr(Schema.Date),
  finishedAt: Schema.NullOr(Schema.Date),
  updatedAt: Schema.Date
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
  readonly traceContext?: Readonly<Record<string, string>> | undefined
}

/** An enqueue's answer: the job, and whether this call created it (false: an idempotent repeat). */
export interface Enqueued {
  readonly job: Job
  readonly created: boolean
}
