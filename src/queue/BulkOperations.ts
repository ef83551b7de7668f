/**
 * Bulk operations: retry, cancel or delete every job a filter matches, run on the server. Starting one
 * writes a row (`bulk_operations`) and hands it to a fiber of the API process, which works through the
 * jobs in JobAdmin's batches (one short transaction each, in id order) and writes the cursor and the counts
 * after every batch: that row is the progress anyone reads, and nothing waits for the client that started
 * it (closing the browser changes nothing). `cancel` stops it before its next batch. Finished operations
 * are kept 7 days.
 *
 * The process that runs an operation owns it (`owner`) and beats (`heartbeat_at`) before each batch; every
 * write is guarded by the owner, so two processes never both advance one operation. An operation whose
 * heartbeat is older than `staleAfter` (its process died) is taken over by any API process from its
 * recorded cursor; a process that shuts down cleanly hands its operations over at once. A batch that ran
 * but whose progress was not written (a crash in between) runs again on take-over: harmless, each action
 * skips the jobs already in its target state (only `matched` counts that batch twice).
 */
import { Cause, Context, Duration, Effect, Layer, Schedule, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { TooManyBulkOperations } from "../domain/errors.ts"
import { type BulkAction, defaultBulkBatch, JobAdmin } from "./JobAdmin.ts"
import type { JobFilter } from "./JobFilter.ts"

export type BulkOperationStatus = "running" | "succeeded" | "cancelled" | "failed"

export interface BulkOperation {
  readonly id: string
  readonly action: BulkAction
  readonly filter: JobFilter
  readonly status: BulkOperationStatus
  readonly matched: number
  readonly acted: number
  readonly batches: number
  readonly error: string | null
  readonly createdAt: Date
  readonly updatedAt: Date
  readonly finishedAt: Date | null
}

/** Operations one service runs at once, all API processes together; one more is refused. */
export const maxRunningOperations = 10
/** Operations a list answers (the latest first). */
export const listedOperations = 20
/** A heartbeat this old means the owner died: another process takes the operation over. */
export const staleAfter = Duration.seconds(30)
/** How often a process looks for operations to take over (and prunes old finished ones). */
const lookEvery = Duration.seconds(5)

interface Row {
  readonly id: string
  readonly action: BulkAction
  readonly filter: StoredFilter
  readonly status: BulkOperationStatus
  readonly cursor: string | null
  readonly matched: string | number
  readonly acted: string | number
  readonly batches: number
  readonly error: string | null
  readonly createdAt: Date
  readonly updatedAt: Date
  readonly finishedAt: Date | null
}

/** A filter as stored: instants as ISO strings. */
type StoredFilter = {
  readonly [K in keyof JobFilter]?: K extends `${string}After` | `${string}Before` ? string : JobFilter[K]
}

const instants = ["createdAfter", "createdBefore", "finishedAfter", "finishedBefore"] as const

const store = (filter: JobFilter): StoredFilter => {
  const stored: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(filter))
    if (value !== undefined) stored[key] = value instanceof Date ? value.toISOString() : value
  return stored as StoredFilter
}

const restore = (stored: StoredFilter): JobFilter => {
  const filter: Record<string, unknown> = { ...stored }
  for (const key of instants) if (typeof stored[key] === "string") filter[key] = new Date(stored[key])
  return filter as JobFilter
}

const fromRow = (row: Row): BulkOperation => ({
  id: row.id,
  action: row.action,
  filter: restore(row.filter),
  status: row.status,
  matched: Number(row.matched),
  acted: Number(row.acted),
  batches: row.batches,
  error: row.error,
  createdAt: row.createdAt,
  updatedAt: row.updatedAt,
  finishedAt: row.finishedAt
})

/** Whether a string can name an operation at all (ids are UUIDs; any other string names none). */
const isOperationId = Schema.is(Schema.String.check(Schema.isUUID()))

const columns = `id, action, filter, status, cursor, matched, acted, batches, error, created_at AS "createdAt",
  updated_at AS "updatedAt", finished_at AS "finishedAt"`

/**
 * What a failed operation tells its readers: the cause (a stack, the database's message) is logged by the
 * process that ran it, never sent (docs/api.md, "Problems").
 */
const failedMessage =
  "a batch failed six times in a row (about 15 s); the cause is in the log of the API process that ran it"

const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const admin = yield* JobAdmin
  const scope = yield* Effect.scope
  const owner = crypto.randomUUID()
  const cols = sql.literal(columns)

  /** The batches of one operation, from its cursor, while this process owns it and it runs. */
  const run = (row: Row): Effect.Effect<void> => {
    const filter = restore(row.filter)
    const batches = Effect.gen(function* () {
      let cursor = row.cursor ?? undefined
      for (;;) {
        const mine = yield* sql`
          UPDATE bulk_operations SET heartbeat_at = now()
          WHERE id = ${row.id} AND owner = ${owner} AND status = 'running' RETURNING id`
        if (mine.length === 0) return // cancelled, or taken over
        const batch = yield* admin
          .bulk({ action: row.action, filter, cursor, batchSize: defaultBulkBatch })
          // a failing batch (the database restarting, out of connections) is tried again for about 15 s
          .pipe(Effect.retry({ times: 5, schedule: Schedule.exponential("500 millis") }))
        const done = batch.nextCursor === null
        const written = yield* sql`
          UPDATE bulk_operations
          SET cursor = ${batch.nextCursor}::uuid, matched = matched + ${batch.matched},
              acted = acted + ${batch.acted}, batches = batches + 1, heartbeat_at = now(), updated_at = now(),
              status = CASE WHEN ${done} THEN 'succeeded' ELSE status END,
              finished_at = CASE WHEN ${done} THEN now() END
          WHERE id = ${row.id} AND owner = ${owner} AND status = 'running' RETURNING id`
        if (done || written.length === 0) return
        cursor = batch.nextCursor ?? undefined
      }
    })
    return batches.pipe(
      Effect.catchCause((cause) =>
        Cause.hasInterruptsOnly(cause)
          ? Effect.failCause(cause)
          : sql`
              UPDATE bulk_operations
              SET status = 'failed', error = ${failedMessage}, finished_at = now(),
                  updated_at = now()
              WHERE id = ${row.id} AND owner = ${owner} AND status = 'running'`.pipe(
              Effect.andThen(Effect.logWarning(`bulk operation ${row.id} failed`, cause))
            )
      ),
      // a clean shutdown hands the operation over at once: its heartbeat is made stale
      Effect.onInterrupt(() =>
        sql`UPDATE bulk_operations SET heartbeat_at = '-infinity'
            WHERE id = ${row.id} AND owner = ${owner} AND status = 'running'`.pipe(Effect.ignore)
      ),
      Effect.ignore,
      Effect.annotateLogs({ module: "BulkOperations", operation: row.id })
    )
  }

  const launch = (row: Row) => Effect.forkIn(run(row), scope)

  /** Starts an operation: written, then run by this process; refused while `maxRunningOperations` run. */
  const start = (action: BulkAction, filter: JobFilter) =>
    Effect.gen(function* () {
      const rows = yield* sql.withTransaction(
        Effect.gen(function* () {
          // one start at a time counts the running ones (the bound holds across processes); the one-key
          // space, as the migrator's lock (the two-key space with 1785684593-4 is the queues' and the gates')
          yield* sql`SELECT pg_advisory_xact_lock(hashtext('jobq:bulk-operations'))`
          const [running] = yield* sql<{ readonly n: number }>`
            SELECT count(*)::integer AS n FROM bulk_operations WHERE status = 'running'`
          if ((running?.n ?? 0) >= maxRunningOperations)
            return yield* Effect.fail(
              new TooManyBulkOperations({
                running: running?.n ?? 0,
                message: `${running?.n ?? 0} bulk operations are running (at most ${maxRunningOperations}): wait for one to end, or cancel one`
              })
            )
          return yield* sql<Row>`
            INSERT INTO bulk_operations (id, action, filter, owner)
            VALUES (${crypto.randomUUID()}, ${action}, ${JSON.stringify(store(filter))}::jsonb, ${owner})
            RETURNING ${cols}`
        })
      )
      const row = rows[0]!
      yield* launch(row)
      return fromRow(row)
    })

  /** The operation; undefined when there is none (an id that is not a UUID names none). */
  const get = (id: string) =>
    isOperationId(id)
      ? sql<Row>`SELECT ${cols} FROM bulk_operations WHERE id = ${id}::uuid`.pipe(
          Effect.map((rows) => (rows[0] === undefined ? undefined : fromRow(rows[0])))
        )
      : Effect.succeed(undefined)

  const list = sql<Row>`
    SELECT ${cols} FROM bulk_operations ORDER BY created_at DESC, id LIMIT ${listedOperations}`.pipe(
    Effect.map((rows) => rows.map(fromRow))
  )

  /** Stops a running operation before its next batch; answers it (unchanged when it had ended). */
  const cancel = (id: string) =>
    Effect.gen(function* () {
      if (!isOperationId(id)) return undefined
      yield* sql`
        UPDATE bulk_operations SET status = 'cancelled', finished_at = now(), updated_at = now()
        WHERE id = ${id}::uuid AND status = 'running'`
      return yield* get(id)
    })

  /** Takes over the operations of processes that stopped beating; prunes old finished ones. */
  const takeOver = Effect.gen(function* () {
    const orphans = yield* sql<Row>`
      UPDATE bulk_operations SET owner = ${owner}, heartbeat_at = now()
      WHERE id IN (
        SELECT id FROM bulk_operations
        WHERE status = 'running' AND heartbeat_at < now() - ${Duration.toMillis(staleAfter)} * interval '1 millisecond'
        ORDER BY heartbeat_at LIMIT ${maxRunningOperations}
        FOR UPDATE SKIP LOCKED)
      RETURNING ${cols}`
    for (const row of orphans) {
      yield* Effect.logInfo(`taking over bulk operation ${row.id} from a process that stopped`)
      yield* launch(row)
    }
    yield* sql`DELETE FROM bulk_operations WHERE finished_at < now() - interval '7 days'`
  })
  yield* Effect.forkIn(
    takeOver.pipe(
      Effect.catchCause((cause) => Effect.logWarning("bulk operations: the take-over look failed", cause)),
      Effect.repeat(Schedule.spaced(lookEvery)),
      Effect.annotateLogs({ module: "BulkOperations" })
    ),
    scope
  )

  return { start, get, list, cancel }
})

export class BulkOperations extends Context.Service<BulkOperations, Effect.Success<typeof make>>()(
  "jobq/BulkOperations"
) {
  static readonly layer = Layer.effect(BulkOperations, make)
}
