/**
 * The contract of the `queues` group: look at queues and workers, pause and resume a queue, set its
 * limits. Bodies are strict: a key the schema does not name is a 422, so a misspelt limit is never
 * silently ignored. Handlers are in QueuesHandlers.
 */
import { Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { QueueName } from "../domain/Job.ts"
import {
  ConcurrencyLimit,
  PausedBy,
  PauseReason,
  QueueInfo,
  RateLimit,
  WorkerInfo
} from "../domain/Queues.ts"
import { maxQueuesPage } from "../queue/QueueControl.ts"
import { alwaysProblems, bodyProblems, QueueNotFound, ValidationFailed } from "./Problems.ts"

const always = alwaysProblems
const withBody = bodyProblems
const strict = { errors: "all", onExcessProperty: "error" } as const

export const QueueNameParams = { name: QueueName }

export const ListQueuesQuery = {
  // the rule before names of dots alone were refused: a queue made then can still end a page
  cursor: Schema.optionalKey(
    Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_.:-]{1,128}$/u)).annotate({
      description: "`nextCursor` of the previous page; omit for the first page"
    })
  ),
  limit: Schema.optionalKey(
    Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: maxQueuesPage })).annotate({
      description: `Queues per page, 1-${maxQueuesPage} (default ${maxQueuesPage})`
    })
  )
}

export const QueuePage = Schema.Struct({
  queues: Schema.Array(QueueInfo),
  nextCursor: Schema.NullOr(Schema.String).annotate({
    description: "Pass as `cursor` for the next page; null on the last page"
  })
}).annotate({ identifier: "QueuePage", description: "Queues in name order" })

export const PauseRequest = Schema.Struct({
  reason: Schema.optionalKey(PauseReason),
  by: Schema.optionalKey(PausedBy)
}).annotate({
  identifier: "PauseRequest",
  description: "Optional: why, and who. Pausing a paused queue keeps its reason unless a new one is given"
})

export const Paused = Schema.Struct({
  outcome: Schema.Literals(["paused", "already_paused"]),
  message: Schema.String,
  queue: QueueInfo
}).annotate({ identifier: "Paused" })

export const Resumed = Schema.Struct({
  outcome: Schema.Literals(["resumed", "not_paused"]),
  message: Schema.String,
  queue: QueueInfo
}).annotate({ identifier: "Resumed" })

const atLeastOne = Schema.makeFilter<{ readonly concurrencyLimit?: unknown; readonly rateLimit?: unknown }>(
  (change) =>
    change.concurrencyLimit === undefined && change.rateLimit === undefined
      ? { path: [], issue: "give concurrencyLimit, rateLimit or both" }
      : undefined,
  { description: "at least one of concurrencyLimit and rateLimit" }
)

export const LimitsRequest = Schema.Struct({
  concurrencyLimit: Schema.optionalKey(Schema.NullOr(ConcurrencyLimit)),
  rateLimit: Schema.optionalKey(Schema.NullOr(RateLimit))
})
  .check(atLeastOne)
  .annotate({
    identifier: "LimitsRequest",
    description: "The limits to change: a field left out keeps its value, null removes that limit"
  })

export const WorkerList = Schema.Struct({
  workers: Schema.Array(WorkerInfo)
}).annotate({
  identifier: "WorkerList",
  description:
    "Worker processes that heartbeated lately, by id (at most 1,000); one that misses three heartbeats leaves the list"
})

export const QueuesGroup = HttpApiGroup.make("queues")
  .add(
    HttpApiEndpoint.get("listQueues", "/queues", {
      query: ListQueuesQuery,
      success: QueuePage,
      error: [ValidationFailed, ...always]
    }).annotate(OpenApi.Summary, "Queues with their counts by status, pause and limits"),
    HttpApiEndpoint.get("getQueue", "/queues/:name", {
      params: QueueNameParams,
      success: QueueInfo,
      error: [QueueNotFound, ValidationFailed, ...always]
    }).annotate(OpenApi.Summary, "One queue"),
    HttpApiEndpoint.post("pause", "/queues/:name/pause", {
      params: QueueNameParams,
      // an empty body reads as null: `reason` and `by` are optional, and so is the body
      payload: [PauseRequest, Schema.Null],
      success: Paused,
      error: [...withBody, ...always]
    })
      .annotate(HttpApi.PayloadParseOptions, strict)
      .annotate(OpenApi.Summary, "Pause a queue: no worker claims its jobs; running ones finish"),
    HttpApiEndpoint.post("resume", "/queues/:name/resume", {
      params: QueueNameParams,
      success: Resumed,
      error: [ValidationFailed, ...always]
    }).annotate(OpenApi.Summary, "Resume a queue; idle workers claim its jobs at once"),
    HttpApiEndpoint.patch("setLimits", "/queues/:name", {
      params: QueueNameParams,
      payload: LimitsRequest,
      success: QueueInfo,
      error: [...withBody, ...always]
    })
      .annotate(HttpApi.PayloadParseOptions, strict)
      .annotate(OpenApi.Summary, "Set or remove a queue's concurrency and rate limits"),
    HttpApiEndpoint.get("listWorkers", "/workers", {
      success: WorkerList,
      error: always
    }).annotate(OpenApi.Summary, "Live worker processes: host, pid, queues, jobs held, last heartbeat")
  )
  .annotate(
    OpenApi.Description,
    "Steer queues (pause, resume, concurrency and rate limits) and see live workers"
  )
