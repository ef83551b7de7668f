/** The queue's expected failures (the API maps each to its problem and status in src/http/Problems.ts). */
import { Schema } from "effect"
import { JobStatus } from "./Job.ts"

export const Issue = Schema.Struct({
  path: Schema.Array(Schema.Union([Schema.String, Schema.Number])),
  message: Schema.String
})
export type Issue = typeof Issue.Type

export class JobNotFound extends Schema.TaggedError<JobNotFound>()("JobNotFound", {
  id: Schema.String,
  message: Schema.String
}) {
  static readonly of = (id: string) => new JobNotFound({ id, message: `no job with id ${id}` })
}

/** The job exists but is in a state the operation does not apply to (cancel a finished job, retry a queued one). */
export class JobStateConflict extends Schema.TaggedError<JobStateConflict>()("JobStateConflict", {
  id: Schema.String,
  status: JobStatus,
  message: Schema.String
}) {}

/** The idempotency key was first used with a different request. */
export class IdempotencyConflict extends Schema.TaggedError<IdempotencyConflict>()("IdempotencyConflict", {
  idempotencyKey: Schema.String,
  jobId: Schema.String,
  message: Schema.String
}) {}

export class UnknownJobKind extends Schema.TaggedError<UnknownJobKind>()("UnknownJobKind", {
  kind: Schema.String,
  known: Schema.Array(Schema.String),
  index: Schema.optional(Schema.Int),
  message: Schema.String
}) {}

/** The payload does not match its kind's schema; every issue is listed with its path. */
export class InvalidPayload extends Schema.TaggedError<InvalidPayload>()("InvalidPayload", {
  kind: Schema.String,
  issues: Schema.Array(Issue),
  index: Schema.optional(Schema.Int),
  message: Schema.String
}) {}

export class QueueNotFound extends Schema.TaggedError<QueueNotFound>()("QueueNotFound", {
  name: Schema.String,
  message: Schema.String
}) {
  static readonly of = (name: string) =>
    new QueueNotFound({
      name,
      message: `no queue named "${name}": no job was enqueued to it and no operator set it`
    })
}

/** A queue name, pause or limit that breaks the rules (`domain/Queues.ts`); every issue is listed. */
export class InvalidQueueSettings extends Schema.TaggedError<InvalidQueueSettings>()("InvalidQueueSettings", {
  issues: Schema.Array(Issue),
  message: Schema.String
}) {}

/** The `unique` options are invalid (or name a payload field the kind does not declare); paths are within `unique`. */
export class InvalidUnique extends Schema.TaggedError<InvalidUnique>()("InvalidUnique", {
  kind: Schema.String,
  issues: Schema.Array(Issue),
  index: Schema.optional(Schema.Int),
  message: Schema.String
}) {}

/**
 * Two items of one batch carry the same idempotency key for different requests (the same request twice is one
 * job, answered for both). Nothing of the batch is enqueued.
 */
export class DuplicateIdempotencyKey extends Schema.TaggedError<DuplicateIdempotencyKey>()(
  "DuplicateIdempotencyKey",
  {
    idempotencyKey: Schema.String,
    /** The later item's index in the batch. */
    index: Schema.Int,
    /** The index of the first item with that key. */
    firstIndex: Schema.Int,
    message: Schema.String
  }
) {}

export type EnqueueError =
  | UnknownJobKind
  | InvalidPayload
  | InvalidUnique
  | IdempotencyConflict
  | DuplicateIdempotencyKey

/** As many bulk operations as may run at once are running: one more is refused until one ends. */
export class TooManyBulkOperations extends Schema.TaggedError<TooManyBulkOperations>()(
  "TooManyBulkOperations",
  {
    running: Schema.Int,
    message: Schema.String
  }
) {}
