/**
 * The HTTP API's contract: endpoints, their schemas and every status each can answer. Handlers live apart
 * (JobsHandlers, SystemHandlers); the OpenAPI document and clients are derived from this. The contract is a
 * function of the job kinds because they are loaded at runtime (`JOBS_MODULE`).
 */
import { Schema } from "effect"
import {
  HttpApi,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpApiMiddleware,
  HttpApiSchema,
  HttpApiSecurity,
  OpenApi
} from "effect/http-api"
import { Job } from "../domain/Job.ts"
import { type JobKind, payloadParseOptions } from "../domain/JobKind.ts"
import { AdminGroup } from "./AdminApi.ts"
import { EventsGroup } from "./EventsApi.ts"
import { makeFlowsGroup } from "./FlowsApi.ts"
import {
  CancelRequested,
  EnqueuedBatch,
  EnqueueQuery,
  ExistingJob,
  Health,
  IdempotencyHeaders,
  JobCancelled,
  JobIdParams,
  JobPage,
  ListJobsQuery,
  makeNewJob,
  makeNewJobBatch,
  WaitQuery
} from "./JobSchemas.ts"
import * as OpenApiDocument from "./OpenApiDocument.ts"
import { PayloadEnclosing } from "./PayloadEnclosing.ts"
import {
  alwaysProblems,
  bodyProblems,
  IdempotencyConflict,
  InternalError,
  JobNotFound,
  JobStateConflict,
  Unauthorized,
  ValidationFailed
} from "./Problems.ts"
import { QueuesGroup } from "./QueuesApi.ts"
import { SchedulesGroup } from "./SchedulesApi.ts"

/**
 * Bearer tokens (`API_TOKENS`). Declared here so the document and clients know the scheme and the 401;
 * the server enforces it for every route but `/health` in one place (BearerAuth), docs and unknown paths
 * included, so this middleware's server side does nothing.
 */
export class Authorization extends HttpApiMiddleware.Service<Authorization>()("jobq/http/Authorization", {
  security: {
    bearer: HttpApiSecurity.bearer.pipe(
      HttpApiSecurity.annotate(OpenApi.Description, "Required when the server sets API_TOKENS")
    )
  },
  error: Unauthorized
}) {}

/** Turns request-decoding failures and body limits into problems (RequestErrors implements it). */
export class RequestErrors extends HttpApiMiddleware.Service<RequestErrors>()("jobq/http/RequestErrors") {}

/**
 * Refuses a body that nests deeper than `MAX_PAYLOAD_DEPTH` allows, before it is parsed (PayloadDepth
 * implements it). Runs inside RequestErrors, so the body it reads is already capped by `MAX_BODY_BYTES`.
 */
export class PayloadDepth extends HttpApiMiddleware.Service<PayloadDepth>()("jobq/http/PayloadDepth") {}

export { PayloadEnclosing } from "./PayloadEnclosing.ts"

const always = alwaysProblems
const withBody = bodyProblems

const JobCreated = Job.pipe(HttpApiSchema.status(201))
/**
 * No new job: an idempotent repeat (the job the key first created, with `Idempotent-Replayed: true`), or a
 * duplicate of a unique job (the job holding the slot, with `duplicate: true`).
 */
const JobReplayed = HttpApiSchema.WithHeaders(ExistingJob, {
  "idempotent-replayed": Schema.optionalKey(Schema.Literal("true"))
}).pipe(HttpApiSchema.status(200))
/**
 * A wait that ended before the job finished: the job as it stands (an idempotent repeat also carries
 * `Idempotent-Replayed: true`). The handlers answer it as a response of their own: its body is the same
 * schema as the 200's, which the encoder would pick first.
 */
export const JobNotFinished = HttpApiSchema.WithHeaders(Job, {
  "idempotent-replayed": Schema.optionalKey(Schema.Literal("true"))
})
  .pipe(HttpApiSchema.status(202))
  .annotate({ description: "The wait ended before the job finished: the job as it stands" })

export const makeJobsGroup = (kinds: ReadonlyArray<JobKind>) => {
  const newJob = makeNewJob(kinds)
  return HttpApiGroup.make("jobs")
    .add(
      HttpApiEndpoint.post("create", "/jobs", {
        headers: IdempotencyHeaders,
        query: EnqueueQuery,
        payload: newJob,
        success: [JobCreated, JobReplayed, JobNotFinished],
        // 404 only with `wait`: a job deleted while waited for (JOB_RETENTION=0 deletes it as it succeeds)
        error: [...withBody, IdempotencyConflict, JobNotFound, ...always]
      })
        .annotate(
          OpenApi.Summary,
          "Enqueue a job (201 new, 200 idempotent repeat or unique duplicate; with `wait`, 202 when it has not finished in time)"
        )
        .annotate(PayloadEnclosing, 1),
      HttpApiEndpoint.post("createBatch", "/jobs/batch", {
        payload: makeNewJobBatch(newJob),
        success: EnqueuedBatch,
        error: [...withBody, IdempotencyConflict, ...always]
      })
        .annotate(OpenApi.Summary, "Enqueue jobs atomically: all or none")
        .annotate(PayloadEnclosing, 3),
      HttpApiEndpoint.get("get", "/jobs/:id", {
        params: JobIdParams,
        success: Job,
        error: [JobNotFound, ...always]
      }).annotate(OpenApi.Summary, "One job"),
      HttpApiEndpoint.get("wait", "/jobs/:id/wait", {
        params: JobIdParams,
        query: WaitQuery,
        // 200: the job is terminal; 202: the timeout passed first (the summary says so: a description
        // on `Job` here would make it a second component)
        success: [Job, Job.pipe(HttpApiSchema.status(202))],
        error: [JobNotFound, ValidationFailed, ...always]
      }).annotate(
        OpenApi.Summary,
        "Wait for a job to finish: 200 once it is terminal (at once if it is), 202 with the job as it stands at the timeout"
      ),
      HttpApiEndpoint.get("list", "/jobs", {
        query: ListJobsQuery,
        success: JobPage,
        error: [ValidationFailed, ...always]
      }).annotate(OpenApi.Summary, "Jobs in id order, filtered, one page at a time"),
      HttpApiEndpoint.post("cancel", "/jobs/:id/cancel", {
        params: JobIdParams,
        success: [JobCancelled, CancelRequested.pipe(HttpApiSchema.status(202))],
        error: [JobNotFound, JobStateConflict, ...always]
      }).annotate(OpenApi.Summary, "Cancel a job (200 cancelled, 202 running: cancel requested)"),
      HttpApiEndpoint.post("retry", "/jobs/:id/retry", {
        params: JobIdParams,
        success: Job,
        error: [JobNotFound, JobStateConflict, ...always]
      }).annotate(OpenApi.Summary, "Queue a failed or cancelled job again with fresh attempts")
    )
    .middleware(PayloadDepth)
    .middleware(RequestErrors)
    .middleware(Authorization)
    .annotate(OpenApi.Description, "Enqueue jobs, read them, list them, cancel and retry them")
}

export const SystemGroup = HttpApiGroup.make("system", { topLevel: true })
  .add(
    HttpApiEndpoint.get("health", "/health", {
      success: Health,
      error: always
    }).annotate(OpenApi.Summary, "200 when the database answers, 503 with the reason when not; no auth"),
    HttpApiEndpoint.get("metrics", "/metrics", {
      success: Schema.String.pipe(
        HttpApiSchema.asText({ contentType: "text/plain; version=0.0.4; charset=utf-8" })
      ),
      error: [InternalError, Unauthorized]
    })
      .middleware(Authorization)
      .annotate(OpenApi.Summary, "Prometheus text exposition")
  )
  .middleware(RequestErrors)
  .annotate(OpenApi.Description, "Health (no token needed) and Prometheus metrics")

export const makeApi = (kinds: ReadonlyArray<JobKind>) =>
  HttpApi.make("jobq")
    .add(makeJobsGroup(kinds))
    .add(QueuesGroup.middleware(RequestErrors).middleware(Authorization))
    .add(SchedulesGroup.middleware(RequestErrors).middleware(Authorization))
    .add(makeFlowsGroup(kinds).middleware(PayloadDepth).middleware(RequestErrors).middleware(Authorization))
    .add(AdminGroup.middleware(RequestErrors).middleware(Authorization))
    .add(EventsGroup.middleware(RequestErrors).middleware(Authorization))
    .add(SystemGroup)
    .annotateMerge(
      OpenApi.annotations({
        title: "jobq",
        version: "1",
        description:
          "A Postgres job queue. Errors are RFC 9457 problem details (application/problem+json); " +
          "see docs/api.md.",
        license: { name: "Apache-2.0", identifier: "Apache-2.0" },
        // relative: the server that serves the document (Swagger UI's "Try it out" calls it)
        servers: [{ url: "/", description: "The server that serves this document" }],
        transform: OpenApiDocument.completeWith(kinds)
      })
    )
    .annotate(HttpApi.ParseOptions, { errors: "all" })
    // a body key the schema does not declare is a 422 naming it, as `additionalProperties: false` says
    // (headers keep the default: a request carries many headers the contract does not name)
    .annotate(HttpApi.PayloadParseOptions, payloadParseOptions)

export type JobqApi = ReturnType<typeof makeApi>
