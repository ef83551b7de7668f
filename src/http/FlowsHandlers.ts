/**
 * The `flows` group's handlers: HTTP in, `Queue` flow calls, HTTP out. The rules (cycles, names, the job
 * bound) live in `Flows`; an `InvalidFlow` is a 422 whose detail names the offending job.
 */
import { Effect, Schema } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import type { FlowNotFound as DomainFlowNotFound, InvalidFlow, NewFlowJob } from "../domain/Flow.ts"
import { enqueuePayload, JobKinds } from "../domain/JobKind.ts"
import { Queue } from "../queue/Queue.ts"
import { jobsEnqueued } from "../telemetry/ApiMetrics.ts"
import * as Series from "../telemetry/Series.ts"
import type { JobqApi } from "./Api.ts"
import * as DatabaseAdmission from "./DatabaseAdmission.ts"
import { FlowNotFound, type NewFlowRequest } from "./FlowsApi.ts"
import { maxListedIssues, ValidationFailed } from "./Problems.ts"

const notFound = (error: DomainFlowNotFound) => new FlowNotFound({ flowId: error.id, detail: error.message })

const invalid = (error: InvalidFlow) =>
  new ValidationFailed({
    detail: error.message,
    errors: error.issues
      .map((issue) => ({ path: ["body", ...issue.path], message: issue.message }))
      .slice(0, maxListedIssues)
  })

export const makeFlowsHandlers = (api: JobqApi) =>
  HttpApiBuilder.group(
    api,
    "flows",
    Effect.fn(function* (handlers) {
      const queue = yield* Queue
      const kinds = yield* JobKinds
      const database = yield* DatabaseAdmission.make
      const context = yield* Effect.context<never>()
      // a flow's jobs count in jobq_jobs_enqueued_total like any other enqueue
      const enqueuedCounters = new Map(
        kinds.all.map((kind) => [kind.name, Series.counter(context, jobsEnqueued, { kind: kind.name })])
      )
      const encoders = new Map(
        kinds.all.map((kind) => [kind.name, Schema.encodeUnknownSync(enqueuePayload(kind.payload))])
      )
      /** The body decoded payloads to their Type; the queue takes them encoded (as POST /jobs does). */
      const toJobs = (body: NewFlowRequest): Array<NewFlowJob> =>
        body.jobs.map((job) => ({
          name: job.name,
          dependsOn: job.dependsOn,
          kind: job.kind,
          payload: encoders.get(job.kind)!(job.payload),
          queue: job.queue,
          priority: job.priority,
          runAt: job.runAt,
          delayMs: job.delayMs,
          maxAttempts: job.maxAttempts
        }))

      return handlers.handleAll({
        createFlow: ({ payload }) =>
          Effect.sync(() => toJobs(payload)).pipe(
            Effect.flatMap((jobs) => queue.enqueueFlow({ jobs, onFailure: payload.onFailure })),
            Effect.tap((flow) =>
              Effect.sync(() => {
                for (const job of flow.jobs) enqueuedCounters.get(job.kind)?.add(1)
              })
            ),
            database,
            Effect.catchTag("InvalidFlow", (e) => Effect.fail(invalid(e)))
          ),

        getFlow: ({ params }) =>
          queue.getFlow(params.id).pipe(
            database,
            Effect.catchTag("FlowNotFound", (e) => Effect.fail(notFound(e)))
          ),

        cancelFlow: ({ params }) =>
          queue.cancelFlow(params.id).pipe(
            database,
            Effect.catchTag("FlowNotFound", (e) => Effect.fail(notFound(e)))
          )
      })
    })
  )
