/**
 * `GET /events`: a follower's `EventFeed` stream written as Server-Sent Events, with `: ping` comments every
 * EVENTS_HEARTBEAT (proxies close a connection that stays silent), ended after EVENTS_MAX_LIFETIME (the
 * client reconnects with `Last-Event-ID`), at shutdown (the feed ends every stream), or after a reset for a
 * client that reads too slowly. A database failure mid-stream ends the stream; the client reconnects.
 */
import { Deferred, Effect, Layer, Stream } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { EventsConfig } from "../Config.ts"
import { EventFeed, type FeedItem, type Filter, formatPosition } from "../queue/EventFeed.ts"
import type { JobqApi } from "./Api.ts"

const list = (value: string | undefined) => (value === undefined ? [] : value.split(","))

/** One SSE message. JSON has no raw newline, so `data` is one line. */
export const sseMessage = (item: FeedItem): string => {
  // the follower is subscribed: every event from here on arrives
  if (item._tag === "Open") return `: open ${formatPosition(item.position)}\n\n`
  if (item._tag === "Reset") {
    const position = formatPosition(item.position)
    return `id: ${position}\nevent: reset\ndata: ${JSON.stringify({ position, reason: item.reason })}\n\n`
  }
  // written out rather than `JSON.stringify` of an object (a tenth of the API's CPU when a follower took
  // every event of a drain): the id, type, job id and time are plain ASCII; the labels and data are encoded
  const e = item.event
  const data = e.data === null || e.data === undefined ? "" : `,"data":${JSON.stringify(e.data)}`
  return `id: ${e.id}\nevent: ${e.type}\ndata: {"id":"${e.id}","type":"${e.type}","job":"${e.job}","queue":${JSON.stringify(e.queue)},"kind":${JSON.stringify(e.kind)},"attempt":${e.attempt},"at":"${e.at}"${data}}\n\n`
}

/** The feed for the API, configured by EventsConfig (its defaults when no layer provides it). */
export const feedLayer = Layer.unwrap(
  Effect.map(Effect.serviceOption(EventsConfig), (config) => {
    const settings = config._tag === "Some" ? config.value : EventsConfig.defaults
    return EventFeed.layer(settings)
  })
)

export const makeEventsHandlers = (api: JobqApi) =>
  HttpApiBuilder.group(
    api,
    "events",
    Effect.fn(function* (handlers) {
      const feed = yield* EventFeed
      const config = yield* Effect.serviceOption(EventsConfig)
      const { heartbeat, maxLifetime } = config._tag === "Some" ? config.value : EventsConfig.defaults
      return handlers.handle("events", ({ query, headers }) =>
        Effect.map(Deferred.make<void>(), (opened) => {
          const filter: Filter = {
            jobs: list(query.job).map((id) => id.toLowerCase()),
            queues: list(query.queue),
            kinds: list(query.kind),
            types: list(query.type)
          }
          const messages = feed.follow(filter, headers["last-event-id"] ?? query.lastEventId).pipe(
            // what the feed has ready goes out as one write: a write per event cost the API more than the
            // events themselves when a follower took every event of a drain
            Stream.mapArray((items) => [items.map(sseMessage).join("")] as const),
            // the heartbeat starts once the `: open` comment is out: a client reads `open` first
            Stream.tap(() => Deferred.succeed(opened, undefined)),
            Stream.catchCause((cause) =>
              Stream.fromEffect(
                Effect.logWarning("an event stream failed; it ends, and its client reconnects", cause)
              ).pipe(Stream.drain)
            )
          )
          const pings = Stream.fromEffect(Deferred.await(opened)).pipe(
            Stream.flatMap(() => Stream.tick(heartbeat).pipe(Stream.drop(1))),
            Stream.map(() => ": ping\n\n")
          )
          return messages.pipe(
            Stream.merge(pings, { haltStrategy: "left" }),
            Stream.interruptWhen(Effect.sleep(maxLifetime)),
            Stream.encodeText
          )
        })
      )
    })
  )
