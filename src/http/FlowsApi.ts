/**
 * The contract of the `flows` group: enqueue a flow (jobs with local names and `dependsOn`), read it,
 * cancel it. The body is built from the job kinds like `POST /jobs`'s, without `idempotencyKey` and
 * `unique` (a flow's job has neither). Handlers are in FlowsHandlers; Api.ts adds the middleware.
 */
import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiError, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { FailurePolicy, Flow, FlowJobName, maxFlowJobs } from "../domain/Flow.ts"
import { enqueuePayload, type JobKind } from "../domain/JobKind.ts"
import { jobOptions, oneSchedule } from "./JobSchemas.ts"
import { PayloadEnclosing } from "./PayloadEnclosing.ts"
import { alwaysProblems, bodyProblems } from "./Problems.ts"

export class FlowNotFound extends HttpApiError.Problem<FlowNotFound>()(
  "FlowNotFound",
  { type: "urn:jobq:problem:flow-not-found", status: 404, title: "No such flow" },
  { flowId: Schema.String }
) {}

const always = alwaysProblems
const withBody = bodyProblems

const { idempotencyKey: _, unique: __, ...flowJobOptions } = jobOptions

const flowJobOf = (kind: JobKind) =>
  Schema.Struct({
    name: FlowJobName,
    dependsOn: Schema.optionalKey(
      Schema.Array(FlowJobName)
        .check(Schema.isMaxLength(maxFlowJobs))
        .annotate({ description: "Names of jobs of this flow that must succeed before this one runs" })
    ),
    kind: Schema.Literal(kind.name),
    payload: enqueuePayload(kind.payload),
    ...flowJobOptions
  })
    .check(oneSchedule)
    .annotate({ identifier: `NewFlowJob_${kind.name.replace(/[^A-Za-z0-9._-]/g, "_")}` })

/** More than `maxFlowJobs` jobs: the 422 names the first one too many. */
const notTooMany = Schema.makeFilter<ReadonlyArray<{ readonly name: string }>>(
  (jobs) =>
    jobs.length > maxFlowJobs
      ? {
          path: [maxFlowJobs],
          issue: `job "${jobs[maxFlowJobs]!.name}" is one too many: a flow holds at most ${maxFlowJobs} jobs`
        }
      : undefined,
  { description: `at most ${maxFlowJobs} jobs`, toJsonSchema: () => ({ maxItems: maxFlowJobs }) }
)

export const makeNewFlow = (kinds: ReadonlyArray<JobKind>) =>
  Schema.Struct({
    onFailure: Schema.optionalKey(FailurePolicy),
    jobs: Schema.Array(
      Schema.Union(kinds.map(flowJobOf)).annotate({
        identifier: "NewFlowJob",
        description:
          "A job of the flow: a job to enqueue (as POST /jobs takes it) with a name and `dependsOn`"
      })
    )
      .check(Schema.isMinLength(1))
      .check(notTooMany)
  }).annotate({
    identifier: "NewFlow",
    description: `1 to ${maxFlowJobs} jobs with distinct names, each depending only on names of the same flow, without a cycle; inserted all or none`
  })
export type NewFlowRequest = Schema.Schema.Type<ReturnType<typeof makeNewFlow>>

export const FlowIdParams = { id: Schema.String.annotate({ description: "Flow id" }) }

export const makeFlowsGroup = (kinds: ReadonlyArray<JobKind>) =>
  HttpApiGroup.make("flows")
    .add(
      HttpApiEndpoint.post("createFlow", "/flows", {
        payload: makeNewFlow(kinds),
        success: Flow.pipe(HttpApiSchema.status(201)),
        error: [...withBody, ...always]
      })
        .annotate(
          OpenApi.Summary,
          "Enqueue a flow: jobs that wait for other jobs (`dependsOn`), inserted all or none"
        )
        .annotate(PayloadEnclosing, 3),
      HttpApiEndpoint.get("getFlow", "/flows/:id", {
        params: FlowIdParams,
        success: Flow,
        error: [FlowNotFound, ...always]
      }).annotate(OpenApi.Summary, "A flow: every job with its name, status and dependencies"),
      HttpApiEndpoint.post("cancelFlow", "/flows/:id/cancel", {
        params: FlowIdParams,
        success: Flow,
        error: [FlowNotFound, ...always]
      }).annotate(
        OpenApi.Summary,
        "Cancel a flow: its waiting jobs end cancelled, its running ones get their cancel requested"
      )
    )
    .annotate(OpenApi.Description, "Flows: jobs that run once the jobs they depend on have succeeded")
