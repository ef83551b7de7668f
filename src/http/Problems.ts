/**
 * The API's one error shape: RFC 9457 problem details (`application/problem+json`). Every error response
 * carries `type` (a stable URN naming the problem, what clients switch on), `title`, `status` and `detail`,
 * plus the extension members listed per problem. docs/api.md describes the rules.
 */
import { Schema } from "effect"
import { HttpApiError } from "effect/http-api"
import { JobStatus } from "../domain/Job.ts"

const urn = <const Name extends string>(name: Name) => `urn:jobq:problem:${name}` as const

/** One request value that failed validation: where it is, and what is wrong with it. */
export const ProblemIssue = Schema.Struct({
  path: Schema.Array(Schema.Union([Schema.String, Schema.Number])).annotate({
    description:
      'Where the value is: its request part ("body", "query", "path", "headers"), then keys and indexes'
  }),
  message: Schema.String
}).annotate({ identifier: "ProblemIssue" })
export type ProblemIssue = typeof ProblemIssue.Type

export class MalformedJson extends HttpApiError.Problem<MalformedJson>()("MalformedJson", {
  type: urn("malformed-json"),
  status: 400,
  title: "The request body is not valid JSON"
}) {}

export class Unauthorized extends HttpApiError.Problem<Unauthorized>()("Unauthorized", {
  type: urn("unauthorized"),
  status: 401,
  title: "A valid bearer token is required"
}) {}

export class Forbidden extends HttpApiError.Problem<Forbidden>()("Forbidden", {
  type: urn("forbidden"),
  status: 403,
  title: "This token may only read"
}) {}

export class JobNotFound extends HttpApiError.Problem<JobNotFound>()(
  "JobNotFound",
  { type: urn("job-not-found"), status: 404, title: "No such job" },
  { jobId: Schema.String }
) {}

export class QueueNotFound extends HttpApiError.Problem<QueueNotFound>()(
  "QueueNotFound",
  { type: urn("queue-not-found"), status: 404, title: "No such queue" },
  { queue: Schema.String }
) {}

export class RouteNotFound extends HttpApiError.Problem<RouteNotFound>()("RouteNotFound", {
  type: urn("route-not-found"),
  status: 404,
  title: "No such route"
}) {}

export class MethodNotAllowed extends HttpApiError.Problem<MethodNotAllowed>()(
  "MethodNotAllowed",
  { type: urn("method-not-allowed"), status: 405, title: "The route does not accept this method" },
  { allowed: Schema.Array(Schema.String) }
) {}

export class IdempotencyConflict extends HttpApiError.Problem<IdempotencyConflict>()(
  "IdempotencyConflict",
  {
    type: urn("idempotency-conflict"),
    status: 409,
    title: "The idempotency key was already used with a different request"
  },
  { idempotencyKey: Schema.String, jobId: Schema.String }
) {}

export class JobStateConflict extends HttpApiError.Problem<JobStateConflict>()(
  "JobStateConflict",
  {
    type: urn("job-state-conflict"),
    status: 409,
    title: "The job is in a state this operation does not apply to"
  },
  { jobId: Schema.String, jobStatus: JobStatus }
) {}

export class PayloadTooLarge extends HttpApiError.Problem<PayloadTooLarge>()(
  "PayloadTooLarge",
  { type: urn("payload-too-large"), status: 413, title: "The request body is too large" },
  { maxBytes: Schema.Int }
) {}

export class UnsupportedMediaType extends HttpApiError.Problem<UnsupportedMediaType>()(
  "UnsupportedMediaType",
  { type: urn("unsupported-media-type"), status: 415, title: "The request body must be application/json" },
  { accepted: Schema.Array(Schema.String) }
) {}

/** Most issues one 422 lists; `detail` counts the rest. */
export const maxListedIssues = 100

export class ValidationFailed extends HttpApiError.Problem<ValidationFailed>()(
  "ValidationFailed",
  { type: urn("validation-failed"), status: 422, title: "The request does not match the schema" },
  { errors: Schema.Array(ProblemIssue) }
) {
  /**
   * The 422 for these issues: the first `maxListedIssues` of them, and a `detail` that quotes the first and
   * counts the rest. A 1 MiB body can hold ~90,000 unknown keys; listing each would answer with 6 MB.
   */
  static readonly of = (
    issues: ReadonlyArray<ProblemIssue>,
    fallback = "the request does not match the schema"
  ) => {
    const first = issues[0]
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : ""
    const unlisted = issues.length > maxListedIssues ? `; the first ${maxListedIssues} are listed` : ""
    return new ValidationFailed({
      detail: first === undefined ? fallback : `${first.path.join(".")}: ${first.message}${more}${unlisted}`,
      errors: issues.slice(0, maxListedIssues)
    })
  }
}

export class InternalError extends HttpApiError.Problem<InternalError>()("InternalError", {
  type: urn("internal-error"),
  status: 500,
  title: "The server failed to answer; it was logged"
}) {}

/** Answered with a `Retry-After` header (seconds), set where responses leave the API (RequestErrors). */
export class DatabaseUnavailable extends HttpApiError.Problem<DatabaseUnavailable>()("DatabaseUnavailable", {
  type: urn("database-unavailable"),
  status: 503,
  title: "The database is unavailable; retry later"
}) {}

/** Seconds a client should wait before retrying after a 503. */
export const retryAfterSeconds = 5

/** Problems every endpoint may answer: a defect, or a database that refuses work. */
export const alwaysProblems = [InternalError, DatabaseUnavailable]

/** Problems every endpoint that reads a JSON body may answer. */
export const bodyProblems = [MalformedJson, PayloadTooLarge, UnsupportedMediaType, ValidationFailed]
