/**
 * The contract of `GET /events`: job events as Server-Sent Events (`text/event-stream`), filtered, with
 * replay from `Last-Event-ID`. The stream's body is written by EventsHandlers; the feed is `EventFeed`.
 */
import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { eventTypes } from "../queue/EventFeed.ts"
import { DatabaseUnavailable, InternalError, ValidationFailed } from "./Problems.ts"

/** Values one filter may list. */
export const maxFilterValues = 20

const listOf = (item: string, description: string) =>
  Schema.String.check(Schema.isPattern(new RegExp(`^${item}(,${item}){0,${maxFilterValues - 1}}$`))).annotate(
    {
      description: `${description}; comma-separated, at most ${maxFilterValues}`
    }
  )

const uuid = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
const name = "[^,]{1,128}"
const type = `(?:${eventTypes.join("|")})`

export const EventsQuery = {
  job: Schema.optionalKey(listOf(uuid, "Only these jobs' events (ids)")),
  queue: Schema.optionalKey(listOf(name, "Only events of jobs in these queues")),
  kind: Schema.optionalKey(listOf(name, "Only events of jobs of these kinds")),
  type: Schema.optionalKey(listOf(type, `Only these event types (${eventTypes.join(", ")})`)),
  lastEventId: Schema.optionalKey(
    Schema.String.check(Schema.isMaxLength(64)).annotate({
      description:
        "Replay from after this event id, as the `Last-Event-ID` header (which wins when both are sent)"
    })
  )
}

export const EventsHeaders = Schema.Struct({
  "last-event-id": Schema.optionalKey(
    Schema.String.check(Schema.isMaxLength(64)).annotate({
      description:
        "The id of the last event received: the stream replays what came after it, or sends `reset`"
    })
  )
})

export const EventsGroup = HttpApiGroup.make("events", { topLevel: true })
  .add(
    HttpApiEndpoint.get("events", "/events", {
      query: EventsQuery,
      headers: EventsHeaders,
      success: HttpApiSchema.StreamUint8Array({ contentType: "text/event-stream" }).annotate({
        description:
          "Server-Sent Events. Each event: `id: <id>`, `event: <type>`, `data: {id, type, job, queue, kind, attempt, at, data}`. " +
          "`event: reset` (data: `{position, reason}`) means events may be missing: list what you need again, then go on. " +
          "`: ping` comments keep the connection alive; the stream ends after EVENTS_MAX_LIFETIME and at shutdown " +
          "(reconnect with `Last-Event-ID`). See docs/api.md."
      }),
      error: [ValidationFailed, InternalError, DatabaseUnavailable]
    }).annotate(
      OpenApi.Summary,
      "Follow job events (Server-Sent Events), filtered by job, queue, kind and type; replays from Last-Event-ID within the replay window"
    )
  )
  .annotate(OpenApi.Description, "Job events as they happen")
