/**
 * The events of a batch statement (a claim, a completion) as one `event_log` row, written by the statement
 * itself while the events gate is open (migrations/0012_event_batches.sql has the mechanism and why).
 */
import { Context, Effect, Layer, Option } from "effect"
import type { SqlClient } from "effect/sql"
import { gateKey, gates } from "../db/Notifications.ts"

/**
 * A condition for the statement's outer `WHERE`, over `rows` (a CTE returning `id`, `queue`, `kind` and
 * `attempts` of every job the statement moved): a one-time filter, always true, that opens the batch, runs
 * the CTE, writes its row, and closes the batch, all before the outer query reads `rows`. With the gate
 * closed it aggregates nothing and calls nothing more (the `HAVING`); open, it always closes the batch,
 * even when the statement moved no job.
 */
export const recordBatch = (sql: SqlClient.SqlClient, event: "started" | "succeeded", rows: string) =>
  sql.literal(
    `(SELECT jobq_events_batch('${event}', array_agg(id), array_agg(queue), array_agg(kind), array_agg(attempts))
      FROM ${rows} WHERE (SELECT jobq_events_batch_open())
      HAVING count(*) > 0 OR current_setting('jobq.events', true) = 'batch') IS NOT FALSE`
  )

/**
 * Whether anyone may be following events now: a cell the worker keeps current (`followed`, looked up once a
 * second) so that its claims and completions take their batch form only while a follower holds the gate.
 * A wrong guess costs time, never an event: the batch form checks the gate itself and writes nothing when
 * it is closed, and the plain form leaves a follower's events to the row triggers. Without this service the
 * statements always take the batch form.
 */
export class EventsFollowed extends Context.Service<EventsFollowed, { followed: boolean }>()(
  "jobq/EventsFollowed"
) {
  static readonly layer = Layer.sync(EventsFollowed, () => ({ followed: true }))
}

/**
 * Whether the claim and the completions write their events as one row per statement at all. Off only in the
 * benchmark that measures what the batches cost when nobody follows (bench/scenarios/Events.ts): the
 * statements are then as they were before 0012, and a follower gets those events from the row triggers.
 */
export const EventBatches = Context.Reference<boolean>("jobq/EventBatches", { defaultValue: () => true })

/**
 * Whether a claim or a completion sent now takes its batch form: batches on (`EventBatches`) and, as far as
 * the worker knows (`EventsFollowed`; "maybe" without it), someone follows. Read when the statement is built.
 */
export const batchForm = Effect.gen(function* () {
  const enabled = yield* EventBatches
  const cell = Option.getOrElse(yield* Effect.serviceOption(EventsFollowed), () => ({ followed: true }))
  return () => enabled && cell.followed
})

/**
 * Whether a session holds, or waits for, the followers' gate (migrations/0008_events.sql: advisory lock
 * (gateKey, gates.events)) in this database.
 */
export const followersPresent = (sql: SqlClient.SqlClient) =>
  sql<{ present: boolean }>`
    SELECT EXISTS (
      SELECT 1 FROM pg_locks
      WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND classid = ${gateKey} AND objid = ${gates.events} AND objsubid = 2 AND mode = 'ExclusiveLock'
    ) AS present`.pipe(Effect.map((rows) => rows[0]?.present === true))
