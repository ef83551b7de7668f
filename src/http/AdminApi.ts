/**
 * The contract of the `admin` group, what the dashboard needs beyond the jobs and queues groups: the
 * overview's statistics (shared by every viewer, computed at most once per `API_STATS_INTERVAL`), deleting
 * a job, and bulk actions over every job a filter matches, one bounded batch per call. Handlers are in
 * AdminHandlers.
 */
import { Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiError, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { Job, JobId } from "../domain/Job.ts"
import { listedOperations, maxRunningOperations } from "../queue/BulkOperations.ts"
import { defaultBulkBatch, maxBulkBatch } from "../queue/JobAdmin.ts"
import { JobIdParams, jobFilterFields } from "./JobSchemas.ts"
import { alwaysProblems, bodyProblems, Forbidden, JobNotFound, JobStateConflict } from "./Problems.ts"

const always = alwaysProblems
const withBody = bodyProblems
const strict = { errors: "all", onExcessProperty: "error" } as const

const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

export const QueueStats = Schema.Struct({
  queue: Schema.String,
  paused: Schema.Boolean,
  counts: Schema.Struct({
    queued: Count,
    retrying: Count,
    running: Count,
    blocked: Count.annotate({ description: "Jobs waiting in flows for their dependencies" }),
    succeeded: Schema.NullOr(Count).annotate({
      description: "As of `finishedCountedAt`; null until counted"
    }),
    failed_permanent: Schema.NullOr(Count).annotate({
      description: "As of `finishedCountedAt`; null until counted"
    }),
    cancelled: Schema.NullOr(Count).annotate({ description: "As of `finishedCountedAt`; null until counted" })
  }),
  finishedCountedAt: Schema.NullOr(Schema.Date).annotate({
    description:
      "When the workers' elected maintainer last counted the queue's finished jobs (counting them per request would read every finished row)"
  }),
  oldestReadyAgeMs: Schema.NullOr(Schema.Finite).annotate({
    description: "How long the oldest job ready to run (queued or retrying, due) has waited; null when none"
  })
}).annotate({ identifier: "QueueStats" })

export const ThroughputMinute = Schema.Struct({
  minute: Schema.Date,
  succeeded: Count,
  failed: Count.annotate({ description: "Jobs that failed permanently" })
}).annotate({ identifier: "ThroughputMinute" })

export const Latency = Schema.Struct({
  queue: Schema.String,
  kind: Schema.String,
  jobs: Count,
  waitP50Ms: Schema.Finite,
  waitP95Ms: Schema.Finite,
  runP50Ms: Schema.Finite,
  runP95Ms: Schema.Finite
}).annotate({
  identifier: "Latency",
  description:
    "Over the jobs of a queue and kind finished in the last hour (the latest 10,000 succeeded and 10,000 failed at most): wait (due to started) and run (started to finished) times"
})

export const Stats = Schema.Struct({
  computedAt: Schema.Date.annotate({ description: "When these figures were read (the database's clock)" }),
  queues: Schema.Array(QueueStats),
  throughput: Schema.Array(ThroughputMinute).annotate({
    description: "Per minute over the last hour, minutes without finished jobs left out"
  }),
  latency: Schema.Array(Latency),
  truncated: Schema.Boolean.annotate({
    description: "More than 200 queues or queue/kind pairs: the rest are left out"
  })
}).annotate({
  identifier: "Stats",
  description:
    "The dashboard's overview; computed at most once per API_STATS_INTERVAL (default 5 s) and shared by every caller"
})

export const JobDeleted = Schema.Struct({ deleted: JobId }).annotate({ identifier: "JobDeleted" })

export const BulkAction = Schema.Literals(["retry", "cancel", "delete"]).annotate({
  description:
    "retry: failed_permanent and cancelled jobs; cancel: queued, retrying (cancelled) and running (cancel requested) jobs; delete: every job but running ones"
})

export const BulkFilter = Schema.Struct({
  ...jobFilterFields,
  ids: Schema.optionalKey(
    Schema.Array(JobId)
      .check(Schema.isBetweenLength(1, maxBulkBatch))
      .annotate({ description: `Only these jobs (1-${maxBulkBatch}): a selection` })
  )
}).annotate({
  identifier: "BulkFilter",
  description: "Which jobs: the filters of GET /jobs, and ids; {} is every job"
})

export const BulkRequest = Schema.Struct({
  action: BulkAction,
  filter: BulkFilter,
  cursor: Schema.optionalKey(
    JobId.annotate({ description: "`nextCursor` of the previous batch; omit for the first" })
  ),
  batchSize: Schema.optionalKey(
    Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: maxBulkBatch })).annotate({
      description: `Jobs per batch, 1-${maxBulkBatch} (default ${defaultBulkBatch})`
    })
  )
}).annotate({
  identifier: "BulkRequest",
  description:
    "One batch of an action over every job the filter matches, in id order after `cursor`; call again with `nextCursor` until `done`"
})

export const BulkBatch = Schema.Struct({
  action: BulkAction,
  matched: Count.annotate({ description: "Jobs of this batch that match the filter" }),
  acted: Count.annotate({ description: "Of those, the ones the action changed" }),
  skipped: Count.annotate({ description: "Matched but in a state the action does not apply to" }),
  nextCursor: Schema.NullOr(JobId).annotate({
    description: "Pass as `cursor` for the next batch; null when done"
  }),
  done: Schema.Boolean
}).annotate({ identifier: "BulkBatch" })

export class BulkOperationNotFound extends HttpApiError.Problem<BulkOperationNotFound>()(
  "BulkOperationNotFound",
  { type: "urn:jobq:problem:bulk-operation-not-found", status: 404, title: "No such bulk operation" },
  { operationId: Schema.String }
) {}

export class TooManyBulkOperations extends HttpApiError.Problem<TooManyBulkOperations>()(
  "TooManyBulkOperations",
  {
    type: "urn:jobq:problem:too-many-bulk-operations",
    status: 409,
    title: `${maxRunningOperations} bulk operations are running already`
  },
  { running: Schema.Int }
) {}

export const BulkOperationRequest = Schema.Struct({
  action: BulkAction,
  filter: BulkFilter
}).annotate({
  identifier: "BulkOperationRequest",
  description: "An action over every job the filter matches, run by the server in batches"
})

export const BulkOperation = Schema.Struct({
  id: Schema.String.annotate({ description: "Operation id" }),
  action: BulkAction,
  filter: BulkFilter,
  status: Schema.Literals(["running", "succeeded", "cancelled", "failed"]).annotate({
    description:
      "running: batches go on; succeeded: every matching job was visited; cancelled: stopped on request (the batches done stay done); failed: a batch kept failing (see `error`)"
  }),
  matched: Count.annotate({ description: "Jobs matched so far" }),
  acted: Count.annotate({ description: "Of those, the ones the action changed" }),
  skipped: Count.annotate({ description: "Matched but in a state the action does not apply to" }),
  batches: Count.annotate({ description: `Batches done (up to ${defaultBulkBatch} jobs each)` }),
  error: Schema.NullOr(Schema.String),
  createdAt: Schema.Date,
  updatedAt: Schema.Date.annotate({ description: "When its progress was last written" }),
  finishedAt: Schema.NullOr(Schema.Date)
}).annotate({
  identifier: "BulkOperation",
  description:
    "A bulk action the server runs in batches whether or not anyone watches; read it again for its progress"
})

export const BulkOperationList = Schema.Struct({
  operations: Schema.Array(BulkOperation)
}).annotate({
  identifier: "BulkOperationList",
  description: `The latest ${listedOperations} operations, newest first (finished ones are kept 7 days)`
})

const BulkOperationParams = { id: Schema.String.annotate({ description: "Operation id" }) }

export const AdminGroup = HttpApiGroup.make("admin")
  .add(
    HttpApiEndpoint.get("stats", "/stats", {
      success: Stats,
      error: always
    }).annotate(
      OpenApi.Summary,
      "The dashboard's overview: counts, oldest ready job, throughput, wait and run times"
    ),
    HttpApiEndpoint.delete("deleteJob", "/jobs/:id", {
      params: JobIdParams,
      success: JobDeleted,
      error: [JobNotFound, JobStateConflict, Forbidden, ...always]
    }).annotate(OpenApi.Summary, "Delete a job that is not running (409 for a running one: cancel it first)"),
    HttpApiEndpoint.post("runNow", "/jobs/:id/run-now", {
      params: JobIdParams,
      success: Job,
      error: [JobNotFound, JobStateConflict, Forbidden, ...always]
    }).annotate(
      OpenApi.Summary,
      "Make a queued or retrying job due now (skip its delay or back-off); 409 in any other state"
    ),
    HttpApiEndpoint.post("bulk", "/jobs/bulk", {
      payload: BulkRequest,
      success: BulkBatch,
      error: [...withBody, Forbidden, ...always]
    })
      .annotate(HttpApi.PayloadParseOptions, strict)
      .annotate(OpenApi.Summary, "Retry, cancel or delete every job a filter matches, one batch per call"),
    HttpApiEndpoint.post("startBulkOperation", "/bulk-operations", {
      payload: BulkOperationRequest,
      success: BulkOperation.pipe(HttpApiSchema.status(202)),
      error: [...withBody, Forbidden, TooManyBulkOperations, ...always]
    })
      .annotate(HttpApi.PayloadParseOptions, strict)
      .annotate(
        OpenApi.Summary,
        `Start retrying, cancelling or deleting every job a filter matches, on the server in batches (202; follow it with GET /bulk-operations/{id}); 409 while ${maxRunningOperations} run`
      ),
    HttpApiEndpoint.get("listBulkOperations", "/bulk-operations", {
      success: BulkOperationList,
      error: always
    }).annotate(OpenApi.Summary, `The latest ${listedOperations} bulk operations, running ones included`),
    HttpApiEndpoint.get("getBulkOperation", "/bulk-operations/:id", {
      params: BulkOperationParams,
      success: BulkOperation,
      error: [BulkOperationNotFound, ...always]
    }).annotate(OpenApi.Summary, "A bulk operation and its progress"),
    HttpApiEndpoint.post("cancelBulkOperation", "/bulk-operations/:id/cancel", {
      params: BulkOperationParams,
      success: BulkOperation,
      error: [BulkOperationNotFound, Forbidden, ...always]
    }).annotate(
      OpenApi.Summary,
      "Stop a running bulk operation before its next batch (what it did stays done); an ended one is answered as it is"
    )
  )
  .annotate(
    OpenApi.Description,
    "What the dashboard needs: statistics, delete, run now, bulk actions by filter (one batch per call, or a server-side operation)"
  )
