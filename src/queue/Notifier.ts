/**
 * LISTEN/NOTIFY channels the queue uses, with reconnection. The database sends `jobq_ready` (payload: the
 * queue name) when jobs become ready, or `!queues` when a queue was paused, resumed or its limits changed;
 * `jobq_cancel` (payload: the job id) when a running job is asked to cancel (see migrations/0001_jobs.sql);
 * `jobq_finished` (payload `*`) when a transaction finished jobs while someone waits (migrations/0008_events.sql,
 * for waiters: `Waiters`); and `jobq_events` (empty) when job events were written while someone follows
 * (`EventFeed`). Notifications are a latency optimisation only: workers poll too,
 * so one lost while reconnecting delays a job, it never loses it.
 */
import { Effect, Queue } from "effect"
import { Notifications } from "../db/Notifications.ts"
import { decorrelatedJitter } from "./Retry.ts"

export const channels = { ready: "jobq_ready", cancel: "jobq_cancel", finished: "jobq_finished" } as const

/**
 * The `jobq_ready` payload a pause, resume or limit change sends (migrations/0004_queues.sql,
 * `QueueRepo`): not a queue name under the enqueue rule, and harmless to a worker that takes it for one
 * (it claims once more). Sharing the channel spares every worker a third listening connection.
 */
export const queuesChanged = "!queues"

const reconnect = decorrelatedJitter({ base: "100 millis", cap: "5 seconds" })

/**
 * Calls `onMessage` for every notification on `channel` until interrupted. After each (re)connection it
 * calls `onListening`, so the caller can catch up on what it may have missed while disconnected.
 */
export const subscribe = (
  channel: string,
  onMessage: (payload: string) => Effect.Effect<void>,
  onListening: Effect.Effect<void> = Effect.void
) =>
  Effect.gen(function* () {
    const notifications = yield* Notifications
    const listenOnce = Effect.scoped(
      Effect.gen(function* () {
        const received = yield* notifications.listen(channel)
        yield* onListening
        for (;;) {
          const notification = yield* Queue.take(received)
          yield* onMessage(notification.payload)
        }
      })
    )
    return yield* listenOnce.pipe(
      Effect.tapError((error) =>
        Effect.logWarning(`LISTEN ${channel} lost its connection; reconnecting`, error.message)
      ),
      Effect.retry(reconnect),
      Effect.annotateLogs({ module: "Notifier", channel })
    )
  })
