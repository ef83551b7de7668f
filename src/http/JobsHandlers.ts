/**
 * The `jobs` group's handlers: HTTP in, `Queue` calls, HTTP out. The queue's rules (validation,
 * idempotency, which states cancel and retry apply to) live in `Queue`; this maps its answers and failures
 * onto the contract's statuses and problems.
 */
import { Cause, Effect, Schema } from "effect"
import { HttpServerResponse } from "effect/http"
import { HttpApiBuilder, HttpApiSchema } from "effect/http-api"
import type * as DomainErrors from "../domain/errors.ts"
import { type Enqueued, isTerminal, Job, type NewJob } from "../domain/Job.ts"
import { enqueuePayload, JobKinds } from "../domain/JobKind.ts"
import { Queue } from "../queue/Queue.ts"
import { Waiters, type WaitOutcome } from "../queue/Waiters.ts"
import { jobsDuplicate, jobsEnqueued } from "../telemetry/ApiMetrics.ts"
import * as Series from "../telemetry/Series.ts"
import type { JobqApi } from "./Api.ts"
import * as DatabaseAdmission from "./DatabaseAdmission.ts"
import { defaultWaitSeconds, type NewJobRequest, waitMillis } from "./JobSchemas.ts"
import {
  IdempotencyConflict,
  JobNotFound,
  JobStateConflict,
  maxListedIssues,
  ValidationFailed
} from "./Problems.ts"

const replayedHeaders = { "idempotent-replayed": "true" } as const

const encodeJob = Schema.encodeSync(Job)

/**
 * 202 with the job as it stands: a wait that ended before the job finished (`JobNotFinished` in the
 * contract). Answered as a response of its own because its body's schema is the 200's too.
 */
const notFinished = (job: Job, replayed: boolean) =>
  HttpServerResponse.jsonUnsafe(encodeJob(job), {
    status: 202,
    ...(replayed ? { headers: replayedHeaders } : {})
  })

const notFound = (error: DomainErrors.JobNotFound) =>
  new JobNotFound({ jobId: error.id, detail: error.message })

const stateConflict = (error: DomainErrors.JobStateConflict) =>
  new JobStateConflict({ jobId: error.id, jobStatus: error.status, detail: error.message })

const idempotencyConflict = (error: DomainErrors.IdempotencyConflict) =>
  new IdempotencyConflict({ idempotencyKey: error.idempotencyKey, jobId: error.jobId, detail: error.message })

/**
 * The queue's own checks (text it cannot store; a kind's schema that disagrees with itself), at the request
 * path the item came from; as many issues listed as a decoding failure lists.
 */
const invalid = (
  error: DomainErrors.UnknownJobKind | DomainErrors.InvalidPayload | DomainErrors.InvalidUnique,
  at: ReadonlyArray<string | number>
) => {
  const issues =
    error._tag === "UnknownJobKind"
      ? [{ path: [...at, "kind"], message: error.message }]
      : error.issues.map((issue) => ({
          path: [...at, error._tag === "InvalidPayload" ? "payload" : "unique", ...issue.path],
          message: issue.message
        }))
  return new ValidationFailed({ detail: error.message, errors: issues.slice(0, maxListedIssues) })
}

export const makeJobsHandlers = (api: JobqApi) =>
  HttpApiBuilder.group(
    api,
    "jobs",
    Effect.fn(function* (handlers) {
      const queue = yield* Queue
      const waiters = yield* Waiters
      const kinds = yield* JobKinds
      const database = yield* DatabaseAdmission.make
      const context = yield* Effect.context<never>()
      const enqueuedCounters = new Map(
        kinds.all.map((kind) => [kind.name, Series.counter(context, jobsEnqueued, { kind: kind.name })])
      )
      const duplicateCounters = new Map(
        kinds.all.map((kind) => [kind.name, Series.counter(context, jobsDuplicate, { kind: kind.name })])
      )
      const countCreated = (jobs: ReadonlyArray<Enqueued>) =>
        Effect.sync(() => {
          for (const { created, duplicate, job } of jobs) {
            if (created) enqueuedCounters.get(job.kind)?.add(1)
            else if (duplicate) duplicateCounters.get(job.kind)?.add(1)
          }
        })

      const encoders = new Map(
        kinds.all.map((kind) => [kind.name, Schema.encodeUnknownSync(enqueuePayload(kind.payload))])
      )

      /**
       * The HTTP body decoded the payload to its Type; the queue takes it in its encoded form. Plain code,
       * no Effect per item (a batch runs it a thousand times); a throw is a defect: a kind's schema that
       * cannot encode what it decoded.
       */
      const toNewJob = (body: NewJobRequest, idempotencyKey: string | undefined): NewJob => ({
        kind: body.kind,
        payload: encoders.get(body.kind)!(body.payload),
        queue: body.queue,
        priority: body.priority,
        runAt: body.runAt,
        delayMs: body.delayMs,
        maxAttempts: body.maxAttempts,
        idempotencyKey,
        unique: body.unique
      })

      /**
       * Waits for a job, each read admitted and bounded as any request's (`database`), the wait itself
       * holding no place and no connection.
       */
      const awaitJob = (id: string, text: string) =>
        waiters.awaitJob(id, waitMillis(text) ?? 0, (id) => database(queue.get(id)))

      return handlers.handleAll({
        create: ({ payload, headers, query }) =>
          Effect.gen(function* () {
            const key = headers["idempotency-key"] ?? payload.idempotencyKey
            const input = yield* Effect.sync(() => toNewJob(payload, key))
            const { job: enqueued, created, duplicate } = yield* database(queue.enqueue(input))
            yield* countCreated([{ job: enqueued, created, duplicate }])
            let job = enqueued
            if (query.wait !== undefined) {
              // the job is committed: a wait that fails (its reads refused by a database out of reach, or the
              // job deleted meanwhile) answers the job as enqueued, not finished, never a 503 that would say
              // nothing happened
              const outcome = yield* awaitJob(enqueued.id, query.wait).pipe(
                Effect.catchCause((cause) =>
                  Cause.hasInterruptsOnly(cause)
                    ? Effect.failCause(cause as Cause.Cause<never>)
                    : Effect.succeed<WaitOutcome>({ job: enqueued, finished: isTerminal(enqueued.status) })
                )
              )
              // a unique duplicate is no idempotent replay: no Idempotent-Replayed header
              if (!outcome.finished) return notFinished(outcome.job, !created && !duplicate)
              job = outcome.job
            }
            if (created) return job
            return HttpApiSchema.withHeaders({
              body: { ...job, duplicate },
              headers: duplicate ? {} : replayedHeaders
            })
          }).pipe(
            Effect.catchTags({
              IdempotencyConflict: (e) => Effect.fail(idempotencyConflict(e)),
              UnknownJobKind: (e) => Effect.fail(invalid(e, ["body"])),
              InvalidPayload: (e) => Effect.fail(invalid(e, ["body"])),
              InvalidUnique: (e) => Effect.fail(invalid(e, ["body"]))
            })
          ),

        createBatch: ({ payload }) =>
          Effect.gen(function* () {
            const inputs = yield* Effect.sync(() =>
              payload.jobs.map((job) => toNewJob(job, job.idempotencyKey))
            )
            const enqueued = yield* queue.enqueueMany(inputs)
            yield* countCreated(enqueued)
            return {
              jobs: enqueued.map(({ job, created, duplicate }) => ({
                id: job.id,
                status: job.status,
                created,
                duplicate
              }))
            }
          }).pipe(
            database,
            Effect.catchTags({
              IdempotencyConflict: (e) => Effect.fail(idempotencyConflict(e)),
              DuplicateIdempotencyKey: (e) =>
                Effect.fail(
                  new ValidationFailed({
                    detail: e.message,
                    errors: [
                      {
                        path: ["body", "jobs", e.index, "idempotencyKey"],
                        message: `item ${e.firstIndex} carries this key for a different request`
                      }
                    ]
                  })
                ),
              UnknownJobKind: (e) => Effect.fail(invalid(e, ["body", "jobs", e.index ?? 0])),
              InvalidPayload: (e) => Effect.fail(invalid(e, ["body", "jobs", e.index ?? 0])),
              InvalidUnique: (e) => Effect.fail(invalid(e, ["body", "jobs", e.index ?? 0]))
            })
          ),

        get: ({ params }) =>
          queue.get(params.id).pipe(
            database,
            Effect.catchTag("JobNotFound", (e) => Effect.fail(notFound(e)))
          ),

        wait: ({ params, query }) =>
          awaitJob(params.id, query.timeout ?? String(defaultWaitSeconds)).pipe(
            Effect.map(({ job, finished }) => (finished ? job : notFinished(job, false))),
            Effect.catchTag("JobNotFound", (e) => Effect.fail(notFound(e)))
          ),

        list: ({ query }) => queue.list(query).pipe(database),

        cancel: ({ params }) =>
          queue.cancel(params.id).pipe(
            database,
            Effect.map(({ outcome, job }) =>
              outcome === "cancelled" ? { outcome, job } : { outcome: "cancel_requested" as const, job }
            ),
            Effect.catchTags({
              JobNotFound: (e) => Effect.fail(notFound(e)),
              JobStateConflict: (e) => Effect.fail(stateConflict(e))
            })
          ),

        retry: ({ params }) =>
          queue.retry(params.id).pipe(
            database,
            Effect.catchTags({
              JobNotFound: (e) => Effect.fail(notFound(e)),
              JobStateConflict: (e) => Effect.fail(stateConflict(e))
            })
          )
      })
    })
  )
