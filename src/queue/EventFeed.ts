/**
 * Job events for followers (`GET /events`), read from the database's event log (migrations/0008) and fanned
 * out in memory: one reader per process, woken by `jobq_events` notifications on the process's one listener
 * for the channel (at most one notification per transaction: the payload is empty, the events are rows).
 *
 * - The log is written only while the events gate is open: the feed holds it from the first follower until
 *   `replayWindow` after the last one left, so a follower that reconnects within the window finds what it
 *   missed. A gate opened when nobody held it writes a `reset` row: events before it may be missing.
 * - Order: (tx, id), read only below the oldest running transaction (the log's comment says why). A row is one
 *   event (written by a row trigger, migrations/0008) or a batch statement's events (a claim's `started`, a
 *   completion's `succeeded`, migrations/0012), expanded here into one event per job in the statement's
 *   order. An event's id is `<tx>-<id>`, or `<tx>-<id>.<n>` for the n-th event (from 0) of a batch row; ids
 *   are unique and ordered as the events are delivered, not consecutive.
 * - Replay (`Last-Event-ID`): from the id on, if every event after it is still in the log (it is not older
 *   than the oldest row kept and no `reset` row follows it); otherwise the follower gets a reset and goes on
 *   from now. Pages are read until the follower has caught up, then it joins the live feed, whose events it
 *   has already replayed are skipped: each event arrives once, in order.
 * - Each follower has a bounded buffer (`subscriberBuffer` events); one that cannot take an event (a client
 *   reading too slowly) is dropped with a reset rather than buffered for without bound.
 * - The elected feed prunes the log while it holds the gate: rows older than `replayWindow`, and beyond the
 *   newest `maxEvents`.
 */
import { type Cause, Context, Duration, Effect, Layer, Option, Queue, Schedule, Stream } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import type { Notifications } from "../db/Notifications.ts"
import * as GateKeeper from "./GateKeeper.ts"
import { subscribe } from "./Notifier.ts"
import { decorrelatedJitter } from "./Retry.ts"

export const eventTypes = [
  "enqueued",
  "started",
  "succeeded",
  "retrying",
  "failed",
  "cancelled",
  "progress"
] as const
export type EventType = (typeof eventTypes)[number]

export const eventsChannel = "jobq_events"

/**
 * A position in the log: events are ordered by (tx, id), and within a batch row by `index`. A position
 * without an index is a whole row (a row-trigger event, a reset) or a place between rows.
 */
export interface Position {
  readonly tx: bigint
  readonly id: bigint
  readonly index?: number | undefined
}

export const formatPosition = (p: Position) =>
  p.index === undefined ? `${p.tx}-${p.id}` : `${p.tx}-${p.id}.${p.index}`
// both parts are Postgres bigints: a larger one names no event (and failed the replay's query)
const maxBigint = 9_223_372_036_854_775_807n
export const parsePosition = (text: string): Position | undefined => {
  const match = /^(\d{1,19})-(\d{1,19})(?:\.(\d{1,6}))?$/.exec(text.trim())
  if (match === null) return undefined
  const tx = BigInt(match[1]!)
  const id = BigInt(match[2]!)
  if (tx > maxBigint || id > maxBigint) return undefined
  return { tx, id, index: match[3] === undefined ? undefined : Number(match[3]) }
}
/** Whether `a` comes after `b`; in one row, a position without an index is the row's end (all of it). */
const after = (a: Position, b: Position) =>
  a.tx > b.tx ||
  (a.tx === b.tx &&
    (a.id > b.id ||
      (a.id === b.id && (a.index ?? Number.POSITIVE_INFINITY) > (b.index ?? Number.POSITIVE_INFINITY))))

export interface JobEvent {
  readonly position: Position
  /** `formatPosition(position)`, made once per event (a batch's ids share the row's part). */
  readonly id: string
  readonly type: string
  readonly at: string
  readonly job: string
  readonly queue: string
  readonly kind: string
  readonly attempt: number
  readonly data: unknown
}

/**
 * What a follower receives: first `Open` (from then on every event arrives), then events, or a reset
 * (re-list: events may be missing before what follows).
 */
export type FeedItem =
  | { readonly _tag: "Open"; readonly position: Position }
  | { readonly _tag: "Event"; readonly event: JobEvent }
  | { readonly _tag: "Reset"; readonly position: Position; readonly reason: string }

/** Which events a follower wants; an empty list takes every value. */
export interface Filter {
  readonly jobs: ReadonlyArray<string>
  readonly queues: ReadonlyArray<string>
  readonly kinds: ReadonlyArray<string>
  readonly types: ReadonlyArray<string>
}

const matches = (filter: Filter, event: JobEvent) =>
  (filter.jobs.length === 0 || filter.jobs.includes(event.job)) &&
  (filter.queues.length === 0 || filter.queues.includes(event.queue)) &&
  (filter.kinds.length === 0 || filter.kinds.includes(event.kind)) &&
  (filter.types.length === 0 || filter.types.includes(event.type))

export interface FeedSettings {
  /** How long events stay replayable (kept in the log, the gate held after the last follower left). */
  readonly replayWindow: Duration.Duration
  /** At most this many events kept in the log. */
  readonly maxEvents: number
  /** Events one follower may have waiting before it is dropped with a reset. */
  readonly subscriberBuffer: number
}

export const defaultFeedSettings: FeedSettings = {
  replayWindow: Duration.minutes(5),
  maxEvents: 100_000,
  subscriberBuffer: 10_000
}

/** Rows read per statement, and about as many events at most (a batch row is never split). */
const pageSize = 500
const pageEvents = 2000
/** How often the reader looks for events while it has followers, notified or not. */
export const pollInterval = Duration.millis(50)

interface Row {
  readonly tx: string
  readonly id: string
  readonly at: Date | string
  readonly type: string
  readonly job_id: string | null
  readonly queue: string | null
  readonly kind: string | null
  readonly attempt: number | null
  readonly data: unknown
  readonly jobs: ReadonlyArray<string> | null
  readonly queues: ReadonlyArray<string> | null
  readonly kinds: ReadonlyArray<string> | null
  readonly attempts: ReadonlyArray<number> | null
}

/** A row's events: itself, or one per job of a batch row. */
const toEvents = (row: Row): Array<JobEvent> => {
  const tx = BigInt(row.tx)
  const id = BigInt(row.id)
  const at = row.at instanceof Date ? row.at.toISOString() : new Date(row.at).toISOString()
  if (row.jobs !== null) {
    const { jobs, queues, kinds, attempts } = row
    const prefix = `${row.tx}-${row.id}.`
    return jobs.map((job, index) => ({
      position: { tx, id, index },
      id: `${prefix}${index}`,
      type: row.type,
      at,
      job,
      queue: queues?.[index] ?? "",
      kind: kinds?.[index] ?? "",
      attempt: attempts?.[index] ?? 0,
      data: null
    }))
  }
  return [
    {
      position: { tx, id },
      id: `${row.tx}-${row.id}`,
      type: row.type,
      at,
      job: row.job_id ?? "",
      queue: row.queue ?? "",
      kind: row.kind ?? "",
      attempt: row.attempt ?? 0,
      data: typeof row.data === "string" ? JSON.parse(row.data) : row.data
    }
  ]
}

interface Subscriber {
  readonly queue: Queue.Queue<JobEvent, Cause.Done>
  overflowed: boolean
}

const make = (settings: FeedSettings) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const scope = yield* Effect.scope
    const context = yield* Effect.context<Notifications>()
    const subscribers = new Set<Subscriber>()
    const signals = yield* Queue.unbounded<void>()
    let closed = false

    /**
     * The events after `from` in up to `pageSize` rows and about `pageEvents` events (whole rows: at least
     * one), of transactions below the horizon only, and whether a later row is held back by an older
     * transaction still running (its rows are not read until it ends: reading them again and again while a
     * busy server's horizon lagged was most of a follower's cost). A position inside a batch row reads that
     * row again for the rest of its events.
     */
    const readPage = (from: Position) =>
      sql<Partial<Row> & { readonly fetched: number | null; readonly held: boolean }>`
        WITH horizon AS MATERIALIZED (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS tx)
        SELECT EXISTS (SELECT 1 FROM event_log WHERE tx >= (SELECT tx FROM horizon)) AS held, counted.*
        FROM (SELECT 1) one LEFT JOIN (
          SELECT tx::text AS tx, id::text AS id, at, type, job_id, queue, kind, attempt, data,
                 jobs, queues, kinds, attempts,
                 sum(size) OVER (ORDER BY tx, id) - size AS before, (count(*) OVER ())::integer AS fetched
          FROM (
            SELECT * FROM event_log
            WHERE (tx, id) ${from.index === undefined ? sql`>` : sql`>=`}
                  (${from.tx.toString()}::bigint, ${from.id.toString()}::bigint)
              AND tx < (SELECT tx FROM horizon)
            ORDER BY tx, id
            LIMIT ${pageSize}
          ) page
        ) counted ON counted.before < ${pageEvents}
        ORDER BY counted.tx::bigint, counted.id::bigint`.pipe(
        Effect.map((rows) => {
          const events: Array<JobEvent> = []
          // where the next page starts: after the last row taken (whole: its events were all taken)
          let next = from
          for (const row of rows) {
            if (row.tx === undefined || row.tx === null) continue
            for (const event of toEvents(row as Row)) if (after(event.position, from)) events.push(event)
            next = { tx: BigInt(row.tx), id: BigInt(row.id!) }
          }
          // rows left after this page: it was cut by rows or by events
          const fetched = rows[0]?.fetched ?? 0
          const taken = fetched === 0 ? 0 : rows.length
          const full = fetched === pageSize || taken < fetched
          return { events, heldBack: rows[0]?.held ?? false, full, next }
        })
      )

    /** Where a follower starting now starts: after every transaction that has ended. */
    const now = sql<{ horizon: string }>`
      SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS horizon`.pipe(
      Effect.map((rows): Position => ({ tx: BigInt(rows[0]!.horizon), id: 0n }))
    )

    /**
     * A follower starting now: from the oldest running transaction on, leaving out the transactions that had
     * committed already (visible to this snapshot): every event committed later arrives, none before.
     */
    const startNow = sql<{ snapshot: string }>`SELECT pg_current_snapshot()::text AS snapshot`.pipe(
      Effect.map((rows) => {
        const [xmin = "0", xmax = "0", xip = ""] = rows[0]!.snapshot.split(":")
        const low = BigInt(xmin)
        const high = BigInt(xmax)
        const running = new Set(xip === "" ? [] : xip.split(",").map(BigInt))
        const committedBefore = (tx: bigint) => tx < low || (tx < high && !running.has(tx))
        return { from: { tx: low, id: 0n } as Position, committedBefore }
      })
    )

    /** Why a follower cannot replay from `from`, if it cannot. */
    const replayRefused = (from: Position) =>
      sql<{ oldest_tx: string | null; oldest_id: string | null; reset: boolean; horizon: string }>`
        SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS horizon,
               (SELECT tx::text FROM event_log ORDER BY tx, id LIMIT 1) AS oldest_tx,
               (SELECT id::text FROM event_log ORDER BY tx, id LIMIT 1) AS oldest_id,
               EXISTS (SELECT 1 FROM event_log WHERE type = 'reset'
                       AND (tx, id) > (${from.tx.toString()}::bigint, ${from.id.toString()}::bigint)) AS reset`.pipe(
        Effect.map(([row]) => {
          // no transaction that far on has started: the id is from another database, or made up; replaying
          // from it would hold back every event until the log got there
          // (the start of the first transaction not yet begun, `xmax-0`, is a place a follower may stand: a
          // reset on a quiet database sends it)
          const horizon = row === undefined ? undefined : BigInt(row.horizon)
          if (horizon !== undefined && (from.tx > horizon || (from.tx === horizon && from.id > 0n)))
            return Option.some("this id is past the end of the log")
          if (row === undefined || row.oldest_tx === null || row.oldest_id === null)
            return Option.some("no events are kept")
          if (row.reset)
            return Option.some("events may be missing after this id: nobody followed for a while")
          // the oldest row's start (a position inside it is still replayable)
          if (after({ tx: BigInt(row.oldest_tx), id: BigInt(row.oldest_id), index: -1 }, from))
            return Option.some("this id is older than the events kept")
          return Option.none()
        })
      )

    // the live reader: one per process, from where the log stood when it started
    let cursor: Position | undefined
    const readLive: Effect.Effect<void, SqlError.SqlError> = Effect.gen(function* () {
      let position = cursor ?? (yield* now)
      cursor = position
      for (;;) {
        const page: {
          events: ReadonlyArray<JobEvent>
          heldBack: boolean
          full: boolean
          next: Position
        } = yield* readPage(position)
        position = page.next
        cursor = position
        for (const event of page.events) {
          for (const subscriber of subscribers) {
            if (!Queue.offerUnsafe(subscriber.queue, event)) {
              subscriber.overflowed = true
              subscribers.delete(subscriber)
              Queue.endUnsafe(subscriber.queue)
            }
          }
        }
        if (page.full) continue
        if (page.heldBack) {
          // an older transaction is still running: look again soon (its commit may notify nobody)
          yield* Effect.sleep("20 millis")
          continue
        }
        return
      }
    })

    // woken by a notification, or every `pollInterval` while anyone follows: the database announces a
    // session's events at most once per 50 ms (migrations/0008)
    const reading = Effect.timeoutOption(Queue.take(signals), pollInterval).pipe(
      Effect.tap(() => Queue.clear(signals)),
      // nobody to read for and nothing announced: wait on
      Effect.flatMap((signal) => (Option.isNone(signal) && subscribers.size === 0 ? Effect.void : readLive)),
      Effect.catch((error: SqlError.SqlError) =>
        Effect.logWarning("reading the event log failed; trying again", error.message).pipe(
          Effect.andThen(Effect.sleep("1 second")),
          Effect.andThen(Queue.offer(signals, undefined))
        )
      ),
      Effect.forever
    )
    const listening = subscribe(
      eventsChannel,
      () => Queue.offer(signals, undefined).pipe(Effect.asVoid),
      Queue.offer(signals, undefined).pipe(Effect.asVoid)
    )

    const prune = Effect.gen(function* () {
      const cutoff = new Date(Date.now() - Duration.toMillis(settings.replayWindow))
      const [kept] = yield* sql<{ tx: string; id: string }>`
        SELECT tx::text AS tx, id::text AS id FROM event_log WHERE at >= ${cutoff} ORDER BY tx, id LIMIT 1`
      yield* kept === undefined
        ? sql`DELETE FROM event_log WHERE at < ${cutoff}`
        : sql`DELETE FROM event_log WHERE (tx, id) < (${kept.tx}::bigint, ${kept.id}::bigint)`
      // beyond the newest `maxEvents` events (a batch row counts its events): the newest row that passes it
      // and everything before
      yield* sql`
        DELETE FROM event_log WHERE (tx, id) <= (
          SELECT tx, id FROM (
            SELECT tx, id, sum(size) OVER (ORDER BY tx DESC, id DESC) AS newer FROM event_log
          ) counted
          WHERE newer > ${settings.maxEvents}
          ORDER BY tx DESC, id DESC LIMIT 1)`
    }).pipe(
      Effect.catch((error: SqlError.SqlError) =>
        Effect.logWarning("pruning the event log failed", error.message)
      )
    )

    const gate = yield* GateKeeper.make("events", settings.replayWindow, (held) =>
      // a gate nobody held before: events may be missing before this row
      (held.reopened ? sql`INSERT INTO event_log (type) VALUES ('reset')` : Effect.void).pipe(
        Effect.andThen(Queue.offer(signals, undefined)),
        Effect.catch((error: SqlError.SqlError) =>
          Effect.logWarning("could not mark the reopened event gate", error.message)
        ),
        Effect.asVoid
      )
    )

    let started = false
    const start = Effect.suspend(() => {
      if (started) return Effect.void
      started = true
      // the live reader starts from here, before any follower joins it: it reads on from this position
      // without a gap, and what a follower replayed already is skipped
      const pruneEvery = Duration.millis(
        Math.max(1000, Math.min(60_000, Duration.toMillis(settings.replayWindow) / 5))
      )
      return Effect.all(
        [
          Effect.tap(now, (position) =>
            Effect.sync(() => {
              cursor = position
            })
          ),
          Effect.forkIn(
            reading.pipe(Effect.annotateLogs({ module: "EventFeed" }), Effect.provideContext(context)),
            scope
          ),
          Effect.forkIn(listening.pipe(Effect.provideContext(context)), scope),
          Effect.forkIn(
            Effect.flatMap(gate.isOpen, (open) => (open ? prune : Effect.void)).pipe(
              Effect.repeat(Schedule.spaced(pruneEvery)),
              Effect.provideContext(context)
            ),
            scope
          )
        ],
        { discard: true }
      ).pipe(
        // the next follower tries again
        Effect.onError(() =>
          Effect.sync(() => {
            started = false
          })
        )
      )
    })

    // shutdown: every follower's stream ends (after what it has buffered), and any that starts later at once
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        for (const subscriber of subscribers) Queue.endUnsafe(subscriber.queue)
        subscribers.clear()
      })
    )

    /** Pages of events after `from` until caught up; emits them and ends with the last position read. */
    const replay = (
      from: Position,
      filter: Filter,
      last: { position: Position },
      before: (tx: bigint) => boolean
    ) =>
      Stream.paginate(from, (position) =>
        readPage(position).pipe(
          Effect.retry({ schedule: decorrelatedJitter({ base: "20 millis", cap: "1 second" }), times: 5 }),
          Effect.map((page): readonly [ReadonlyArray<JobEvent>, Option.Option<Position>] => {
            // the rows read are done with, whether or not they held an event after `position`
            if (after(page.next, last.position)) last.position = page.next
            return [page.events, page.full ? Option.some(page.next) : Option.none()]
          })
        )
      ).pipe(
        Stream.filter((event) => !before(event.position.tx) && matches(filter, event)),
        Stream.map((event): FeedItem => ({ _tag: "Event", event }))
      )

    /**
     * The events matching `filter`, from `lastEventId` on when it can be replayed (else a reset first), or
     * from now. Ends at shutdown, or after a reset when the follower fell `subscriberBuffer` events behind.
     */
    const follow = (
      filter: Filter,
      lastEventId: string | undefined
    ): Stream.Stream<FeedItem, SqlError.SqlError> =>
      Stream.unwrap(
        Effect.gen(function* () {
          if (closed) return Stream.empty
          yield* gate.enter
          yield* start
          const asked = lastEventId === undefined ? undefined : parsePosition(lastEventId)
          const refused =
            lastEventId === undefined
              ? Option.none<string>()
              : asked === undefined
                ? Option.some("not an event id")
                : yield* replayRefused(asked)
          const replayable = asked !== undefined && Option.isNone(refused)
          const fresh = replayable ? undefined : yield* startNow
          const from = fresh?.from ?? asked!
          // a replay takes everything after its id; a fresh start leaves out what had committed before it
          const before = fresh?.committedBefore ?? (() => false)
          const reset: Stream.Stream<FeedItem> = Option.match(refused, {
            onNone: () => Stream.empty,
            onSome: (reason) => Stream.succeed<FeedItem>({ _tag: "Reset", position: from, reason })
          })
          const last = { position: from }
          const subscriber: Subscriber = {
            queue: yield* Queue.bounded<JobEvent, Cause.Done>(settings.subscriberBuffer),
            overflowed: false
          }
          const join = Effect.acquireRelease(
            Effect.sync(() => {
              if (closed) Queue.endUnsafe(subscriber.queue)
              else {
                subscribers.add(subscriber)
                Queue.offerUnsafe(signals, undefined)
              }
            }),
            () =>
              Effect.sync(() => {
                subscribers.delete(subscriber)
              })
          )
          const live = Stream.fromQueue(subscriber.queue).pipe(
            // replayed already
            Stream.filter(
              (event) =>
                after(event.position, last.position) && !before(event.position.tx) && matches(filter, event)
            ),
            Stream.map((event): FeedItem => ({ _tag: "Event", event })),
            Stream.concat(
              Stream.suspend(() =>
                subscriber.overflowed
                  ? Stream.succeed<FeedItem>({
                      _tag: "Reset",
                      position: last.position,
                      reason: `more than ${settings.subscriberBuffer} events were waiting for this client`
                    })
                  : Stream.empty
              )
            )
          )
          return Stream.succeed<FeedItem>({ _tag: "Open", position: from }).pipe(
            Stream.concat(reset),
            // caught up (the log read to its end), then joined, then read again for what came meanwhile
            Stream.concat(replay(from, filter, last, before)),
            Stream.concat(
              Stream.unwrap(
                Effect.map(join, () =>
                  replay(last.position, filter, last, before).pipe(Stream.concat(Stream.suspend(() => live)))
                )
              )
            )
          )
        })
      ).pipe(Stream.scoped)

    return {
      follow,
      /** Followers now (0 once every stream has ended). */
      size: Effect.sync(() => subscribers.size),
      /** Deletes events older than the window and beyond the count now (the feed does so on its own too). */
      prune
    }
  })

export class EventFeed extends Context.Service<EventFeed, Effect.Success<ReturnType<typeof make>>>()(
  "jobq/EventFeed"
) {
  static readonly layer = (settings: Partial<FeedSettings> = {}) =>
    Layer.effect(EventFeed, make({ ...defaultFeedSettings, ...settings }))
}
