/**
 * The `queues` group's handlers: HTTP in, `QueueControl` calls, HTTP out. The rules (name and limit
 * bounds, what pause and resume answer when repeated) live in `QueueControl`.
 */
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import type * as DomainErrors from "../domain/errors.ts"
import { QueueControl } from "../queue/QueueControl.ts"
import type { JobqApi } from "./Api.ts"
import { orUnavailable } from "./DatabaseErrors.ts"
import { QueueNotFound, ValidationFailed } from "./Problems.ts"

const notFound = (error: DomainErrors.QueueNotFound) =>
  new QueueNotFound({ queue: error.name, detail: error.message })

/** The contract's schemas checked the request already; the queue's own check says the same, in the body. */
const invalid = (error: DomainErrors.InvalidQueueSettings) =>
  new ValidationFailed({
    detail: error.message,
    errors: error.issues.map((issue) => ({ path: ["body", ...issue.path], message: issue.message }))
  })

export const makeQueuesHandlers = (api: JobqApi) =>
  HttpApiBuilder.group(
    api,
    "queues",
    Effect.fn(function* (handlers) {
      const control = yield* QueueControl
      return handlers.handleAll({
        listQueues: ({ query }) => control.listQueues(query).pipe(orUnavailable),

        getQueue: ({ params }) =>
          control.getQueue(params.name).pipe(
            orUnavailable,
            Effect.catchTags({
              QueueNotFound: (e) => Effect.fail(notFound(e)),
              InvalidQueueSettings: (e) => Effect.fail(invalid(e))
            })
          ),

        pause: ({ params, payload }) =>
          control.pause(params.name, payload ?? {}).pipe(
            orUnavailable,
            Effect.catchTags({
              QueueNotFound: (e) => Effect.die(e),
              InvalidQueueSettings: (e) => Effect.fail(invalid(e))
            })
          ),

        resume: ({ params }) =>
          control.resume(params.name).pipe(
            orUnavailable,
            Effect.catchTags({
              QueueNotFound: (e) => Effect.die(e),
              InvalidQueueSettings: (e) => Effect.fail(invalid(e))
            })
          ),

        listWorkers: () => Effect.map(control.listWorkers, (workers) => ({ workers })).pipe(orUnavailable),

        setLimits: ({ params, payload }) =>
          control.setLimits(params.name, payload).pipe(
            orUnavailable,
            Effect.catchTags({
              QueueNotFound: (e) => Effect.die(e),
              InvalidQueueSettings: (e) => Effect.fail(invalid(e))
            })
          )
      })
    })
  )
