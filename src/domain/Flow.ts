/**
 * Flows: jobs with local names that wait for other jobs of the same flow (`dependsOn`). What a flow asks
 * for, how it is shown, and its errors. The rules (no cycle, known names, at most `maxFlowJobs`) are checked
 * by `Flows` (src/queue/Flows.ts); the unblocking is done by the database (migrations/0007_flows.sql).
 */
import { Schema } from "effect"
import { Issue } from "./errors.ts"
import { JobId, JobStatus, type NewJob } from "./Job.ts"

/** Most jobs one flow may hold (and so most dependencies one job may name). */
export const maxFlowJobs = 1000

export const FlowId = Schema.String.pipe(
  Schema.check(Schema.isUUID()),
  Schema.brand("FlowId"),
  Schema.annotate({ description: "Flow id (UUIDv7, time-ordered)" })
)
export type FlowId = typeof FlowId.Type
export const isFlowId: (id: string) => id is FlowId = Schema.is(FlowId)

/** A job's name within its flow: what `dependsOn` and a dependent's `parents` call it. */
export const FlowJobName = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^[A-Za-z0-9_.:-]{1,128}$/u)),
  Schema.annotate({ description: "The job's name within its flow: 1-128 characters of A-Z a-z 0-9 _ . : -" })
)

/**
 * What the flow does when a dependency ends `failed_permanent` or `cancelled`: `cancel` (the default)
 * cancels its dependents, transitively, each with a reason naming the dependency; `wait` leaves them
 * `blocked` until the dependency is retried (`POST /jobs/{id}/retry`) and succeeds.
 */
export const FailurePolicy = Schema.Literals(["cancel", "wait"]).annotate({
  description:
    "When a dependency ends failed_permanent or cancelled: `cancel` (default) cancels its dependents, transitively; `wait` leaves them blocked until the dependency is retried and succeeds"
})
export type FailurePolicy = typeof FailurePolicy.Type
export const defaultFailurePolicy: FailurePolicy = "cancel"

/** One job of a flow, after HTTP or library input was decoded. */
export interface NewFlowJob extends Omit<NewJob, "idempotencyKey" | "unique"> {
  readonly name: string
  readonly dependsOn?: ReadonlyArray<string> | undefined
}

export interface NewFlow {
  readonly jobs: ReadonlyArray<NewFlowJob>
  readonly onFailure?: FailurePolicy | undefined
}

/** Where a flow stands: `active` while a job is unfinished, else how it ended. */
export const FlowStatus = Schema.Literals(["active", "succeeded", "failed", "cancelled"]).annotate({
  description:
    "active: some job is unfinished; succeeded: every job succeeded; failed: every job finished, not all succeeded; cancelled: the flow was cancelled"
})
export type FlowStatus = typeof FlowStatus.Type

export const FlowJob = Schema.Struct({
  id: JobId,
  name: FlowJobName,
  kind: Schema.String,
  queue: Schema.String,
  status: JobStatus,
  dependsOn: Schema.Array(Schema.String).annotate({ description: "Names of the jobs it waits for" }),
  attempts: Schema.Int,
  lastError: Schema.NullOr(Schema.String),
  createdAt: Schema.Date,
  finishedAt: Schema.NullOr(Schema.Date)
}).annotate({ identifier: "FlowJob" })
export type FlowJob = typeof FlowJob.Type

export const Flow = Schema.Struct({
  id: FlowId,
  status: FlowStatus,
  onFailure: FailurePolicy,
  createdAt: Schema.Date,
  cancelledAt: Schema.NullOr(Schema.Date),
  jobs: Schema.Array(FlowJob).annotate({ description: "Every job of the flow, in the order it was given" })
}).annotate({ identifier: "Flow" })
export type Flow = typeof Flow.Type

/** A flow that breaks the rules: a cycle, a duplicate or unknown name, too many jobs, an invalid job. */
export class InvalidFlow extends Schema.TaggedError<InvalidFlow>()("InvalidFlow", {
  /** The offending job's name, when one job is at fault. */
  job: Schema.optional(Schema.String),
  issues: Schema.Array(Issue),
  message: Schema.String
}) {}

export class FlowNotFound extends Schema.TaggedError<FlowNotFound>()("FlowNotFound", {
  id: Schema.String,
  message: Schema.String
}) {
  static readonly of = (id: string) => new FlowNotFound({ id, message: `no flow with id ${id}` })
}
