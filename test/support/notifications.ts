/** LISTEN on a channel around an action, and wait (with a deadline) for the notifications it causes. */
import { PgClient } from "@effect/sql-pg"
import { Effect, Queue as Mailbox } from "effect"

/**
 * Listens on `channel` (LISTEN is confirmed before `action` starts), runs `action`, then collects
 * notification payloads until one satisfies `until`. Fails naming the channel if none does in time.
 * Notifications arrive in commit order, so a sentinel sent after the action marks "everything before it".
 */
export const notificationsDuring = <A, E, R>(
  channel: string,
  action: Effect.Effect<A, E, R>,
  until: (payload: string) => boolean,
  timeoutMs = 5_000
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const pg = yield* PgClient.PgClient
      const mailbox = yield* pg.listen(channel)
      const result = yield* action
      const seen: Array<string> = []
      yield* Effect.gen(function* () {
        for (;;) {
          const note = yield* Mailbox.take(mailbox)
          seen.push(note.payload)
          if (until(note.payload)) return
        }
      }).pipe(
        Effect.timeoutOrElse({
          duration: timeoutMs,
          orElse: () =>
            Effect.die(
              new Error(
                `no matching notification on ${channel} within ${timeoutMs} ms (saw ${JSON.stringify(seen)})`
              )
            )
        })
      )
      return { result, seen }
    })
  )

/** Sends a marker on `channel`: once it arrives, every notification committed before it has arrived too. */
export const sentinel = (channel: string, marker: string) =>
  Effect.flatMap(PgClient.PgClient, (pg) => pg.notify(channel, marker))
