/**
 * Every SQL statement the queue runs, one named method each. State changes a worker makes are guarded by
 * `status = 'running' AND lease_owner = <worker>`: a worker that lost its lease changes nothing.
 * Methods fail with `SqlError` only; the rules (what may be cancelled, what an idempotency clash means)
 * live in `Queue`.
 */
import { Context, Effect, Layer } from "effect"
import { SqlClient, type SqlError, type Statement } from "effect/sql"
import type { Job, JobId, JobStatus } from "../domain/Job.ts"
import { batchForm, followersPresent, recordBatch } from "./eventBatch.ts"
import { parentsExpression } from "./FlowRepo.ts"
import { type HeldAnswer, heldAnswer, heldByOf, heldIds } from "./heldAnswer.ts"
import { conditions, type JobFilter, where as whereOf } from "./JobFilter.ts"
import { replaceNulText } from "./nul.ts"
import { anyResult, recordsetText } from "./results.ts"
import type { UniqueSpec } from "./Uniqueness.ts"

/** A row ready to insert: payload already validated and encoded, id already chosen. */
export interface JobInsert {
  readonly id: string
  readonly queue: string
  readonly kind: string
  readonly payload: unknown
  readonly priority: number
  readonly maxAttempts: number
  readonly runAt: Date | null
  readonly delayMs: number | null
  readonly idempotencyKey: string | null
  readonly requestHash: string | null
  readonly traceContext: Readonly<Record<string, string>> | null
  /** Set when the enqueue asked for `unique` (see `insertUnique`). */
  readonly unique: UniqueSpec | null
}

/** One row of `insertUnique`: the job if it was inserted, else the unique key it was refused on. */
export interface UniqueInsertOutcome {
  readonly id: string
  readonly job: Job | undefined
  /** The key the statement computed (null for a row without `unique`). */
  readonly uniqueKey: string | null
}

/** A claimed job, with the trace context its enqueue stored. */
export interface ClaimedJob extends Job {
  readonly traceContext: Readonly<Record<string, string>> | null
  /**
   * The rescuer once gave this job its attempt back because no start was recorded (see `rescueExpired`):
   * record its start (`markStarted`) before its handler runs, so that a crash now counts.
   */
  readonly recordStartFirst: boolean
  /** The flow the job belongs to; null outside flows. */
  readonly flowId: string | null
  /** In a flow: its dependencies' results by local name (`JobContext.parents`); null outside flows. */
  readonly parents: Readonly<Record<string, unknown>> | null
}

export interface ListFilter extends JobFilter {
  /** Only jobs up to this id (a payload filter's scan window, `JobFilter.scanWindowEnd`). */
  readonly upTo?: string | undefined
  /** Return jobs whose id sorts after this one (keyset pagination). */
  readonly after?: string | undefined
  /** At most this many jobs. */
  readonly limit: number
  /**
   * Stop once the jobs taken hold this many bytes of payload, result and errors (as JSON text); the first
   * job is always taken, and the one that passes the budget ends the page. Unset: no byte bound.
   */
  readonly maxBytes?: number | undefined
}

export interface ListPage {
  readonly jobs: ReadonlyArray<Job>
  /** Whether a job after the last one matches the filter. */
  readonly more: boolean
}

export interface FailInput {
  readonly id: string
  readonly error: string
  /** Delay before the retry; ignored when the job ends. */
  readonly retryDelayMs: number
  /** Fail permanently now, whatever attempts remain. */
  readonly permanent: boolean
}

export interface LeaseState {
  readonly id: JobId
  readonly cancelRequested: boolean
  /** False: held, but its row was locked by another transaction, so its lease was not extended this time. */
  readonly renewed: boolean
}

/** A lease to renew, and whether the job's handler has started (the rescuer refunds an unstarted job). */
export interface HeldLease {
  readonly id: string
  readonly started: boolean
  /**
   * Whether to extend the lease now (default true). A lease not due is only checked (still held? cancel
   * asked?), which writes nothing, unless its start is still to be recorded.
   */
  readonly due?: boolean
}

/** The trace id a `traceparent` carrier names (as the `traceId` column reads it). */
const traceIdOf = (carrier: Readonly<Record<string, string>> | null) =>
  carrier?.traceparent === undefined ? null : (/^00-([0-9a-f]{32})-/.exec(carrier.traceparent)?.[1] ?? null)

export type ClaimedRow = Omit<
  ClaimedJob,
  | "status"
  | "leaseOwner"
  | "leaseExpiresAt"
  | "cancelRequestedAt"
  | "result"
  | "finishedAt"
  | "updatedAt"
  | "traceId"
> & { readonly startedAt: Date }

/**
 * The lease a claim gives each job, in milliseconds; null: none of its own, the claiming worker's row in
 * `workers` holds it (`Heartbeat`: what a worker's pool claims with), and the rescuer takes it back once that
 * row's lease ran out. A job with a lease of its own is rescued when that lease runs out.
 */
export type LeaseMs = number | null

/**
 * A claimed job from the columns the claim returns. The others are what the claim itself set, or what a
 * job that could be claimed always holds: it was queued or retrying, so it has no result, no finish time,
 * and no pending cancel (a cancel ends such a job at once); `started_at`, `updated_at` and the lease all
 * come from the same `now()`. The trace id is read from the trace context the claim returns anyway (the
 * claim's columns stay as they were).
 */
export const claimedJob = (row: ClaimedRow, workerId: string, leaseMs: LeaseMs): ClaimedJob => ({
  ...row,
  traceId: traceIdOf(row.traceContext),
  status: "running",
  leaseOwner: workerId,
  leaseExpiresAt: leaseMs === null ? null : new Date(row.startedAt.getTime() + leaseMs),
  cancelRequestedAt: null,
  result: null,
  finishedAt: null,
  updatedAt: row.startedAt
})

/** What a claimed job holds beyond its first attempt's defaults: in `CompactClaimedRow.rare`, when any of it is set. */
interface RareFields {
  readonly idempotencyKey: string | null
  readonly lastError: string | null
  readonly errors: ClaimedJob["errors"]
  readonly recordStartFirst: boolean
  readonly snoozes: number
  readonly progress: ClaimedJob["progress"]
  readonly flowId: string | null
  readonly flowName: string | null
  readonly parents: ClaimedJob["parents"]
}

/**
 * A row of the plain claim: the columns every job has, and `rare`, null while the job holds nothing but a first
 * attempt's defaults (no idempotency key, no error yet, never snoozed or rescued unstarted, no progress, outside
 * flows), else those fields as one JSON object. The driver decodes each column of each claimed row, null or
 * not; nine columns that are null or empty for most jobs cost a worker about as much as the id and payload.
 */
export type CompactClaimedRow = Omit<ClaimedRow, keyof RareFields> & { readonly rare: RareFields | null }

/** The plain claim's output over its `claimed c` rows (`CompactClaimedRow`). */
const compactClaimColumns = `c.id, c.queue, c.kind, c.payload, c.priority, c.attempts, c."maxAttempts", c."runAt",
    c."createdAt", c."startedAt", c."traceContext",
    CASE WHEN c."idempotencyKey" IS NULL AND c."lastError" IS NULL AND c.errors = '[]'::jsonb
              AND NOT c."recordStartFirst" AND c.snoozes = 0 AND c.progress IS NULL AND c."flowId" IS NULL
         THEN NULL
         ELSE jsonb_build_object('idempotencyKey', c."idempotencyKey", 'lastError', c."lastError",
                'errors', c.errors, 'recordStartFirst', c."recordStartFirst", 'snoozes', c.snoozes,
                'progress', c.progress, 'flowId', c."flowId", 'flowName', c."flowName",
                'parents', ${parentsExpression("c.id", 'c."flowId"')})
    END AS rare`

/** A claimed job from a row of the plain claim (`claimedJob` for the rest). */
const fromCompact = (row: CompactClaimedRow, workerId: string, leaseMs: LeaseMs): ClaimedJob => {
  const rare = row.rare
  return {
    id: row.id,
    queue: row.queue,
    kind: row.kind,
    payload: row.payload,
    status: "running",
    priority: row.priority,
    attempts: row.attempts,
    maxAttempts: row.maxAttempts,
    runAt: row.runAt,
    leaseOwner: workerId,
    leaseExpiresAt: leaseMs === null ? null : new Date(row.startedAt.getTime() + leaseMs),
    cancelRequestedAt: null,
    idempotencyKey: rare?.idempotencyKey ?? null,
    lastError: rare?.lastError ?? null,
    // a fresh array, as a decoded column was: a handler in plain JavaScript may push to its job's copy
    errors: rare?.errors ?? [],
    result: null,
    snoozes: rare?.snoozes ?? 0,
    progress: rare?.progress ?? null,
    createdAt: row.createdAt,
    startedAt: row.startedAt,
    finishedAt: null,
    updatedAt: row.startedAt,
    flowId: rare?.flowId ?? null,
    flowName: rare?.flowName ?? null,
    traceId: traceIdOf(row.traceContext),
    traceContext: row.traceContext,
    recordStartFirst: rare?.recordStartFirst ?? false,
    parents: rare?.parents ?? null
  }
}

interface InsertedRow {
  readonly id: JobId
  readonly runAt: Date
  readonly createdAt: Date
}

/**
 * A new job from its insert and the columns the database chose: the rest is the request itself or the
 * defaults of a new row. Decoding every column of every inserted row back was a third of a batch
 * enqueue's time. The payload is the encoded value that was stored (`jsonb` keeps its meaning; only key
 * order may differ from what a later read returns).
 */
const insertedJob = (job: JobInsert, row: InsertedRow): Job => ({
  id: row.id,
  queue: job.queue,
  kind: job.kind,
  payload: job.payload as Job["payload"],
  status: "queued",
  priority: job.priority,
  attempts: 0,
  maxAttempts: job.maxAttempts,
  runAt: row.runAt,
  leaseOwner: null,
  leaseExpiresAt: null,
  cancelRequestedAt: null,
  idempotencyKey: job.idempotencyKey,
  lastError: null,
  errors: [],
  result: null,
  snoozes: 0,
  progress: null,
  createdAt: row.createdAt,
  startedAt: null,
  finishedAt: null,
  updatedAt: row.createdAt,
  flowId: null,
  flowName: null,
  traceId: traceIdOf(job.traceContext)
})

const maxErrorLength = 4000
const truncate = (error: string) => {
  const text = replaceNulText(error)
  return text.length > maxErrorLength ? `${text.slice(0, maxErrorLength)}… (truncated)` : text
}

// Statements that take a batch of ids join `unnest(ids)` rather than filter on `id = ANY(ids)`: the planner
// likes the small lease index for `status = 'running'`, and would then test the whole array against every
// entry it scans, dead ones included, which grows with the batch and with the table's churn.
const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  // whether a follower may be listening now (the worker keeps it current): the batch forms only then
  const batchNow = yield* batchForm
  const heldBy = heldByOf(sql)

  const columns = sql.literal(`j.id, j.queue, j.kind, j.payload, j.status, j.priority, j.attempts,
    j.max_attempts AS "maxAttempts", j.run_at AS "runAt", j.lease_owner AS "leaseOwner",
    j.lease_expires_at AS "leaseExpiresAt", j.cancel_requested_at AS "cancelRequestedAt",
    j.idempotency_key AS "idempotencyKey", j.last_error AS "lastError", j.errors, j.result,
    j.created_at AS "createdAt", j.started_at AS "startedAt", j.finished_at AS "finishedAt",
    j.updated_at AS "updatedAt", j.snoozes, j.progress, j.flow_id AS "flowId", j.flow_name AS "flowName",
    substring(j.trace_context->>'traceparent' from '^00-([0-9a-f]{32})-') AS "traceId"`)

  /**
   * An ended attempt's due and start instants for its `errors` entry, read from the row before the statement
   * changes it: a claim leaves `run_at` as it was (when the attempt was due) and sets `started_at`.
   */
  const attemptDue = sql.literal(`to_char(j.run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`)
  const attemptStart = sql.literal(
    `to_char(j.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`
  )

  /** A row's `run_at`: the instant asked for, or now plus its delay (the database's clock). */
  const runAtOf = sql.literal(
    `coalesce(x.run_at, now() + coalesce(x.delay_ms, 0) * interval '1 millisecond')`
  )

  /**
   * A batch as one array per column, `x`, for `unnest`. The batch goes that way rather than as one jsonb
   * document (`jsonb_to_recordset`): Postgres spent a third more on the same rows, and the API serialized
   * every record into it. `unique` adds the columns of `UniqueSpec`.
   */
  const batchSource = (jobs: ReadonlyArray<JobInsert>, unique: boolean) => {
    // columns every row of a batch shares (a bulk enqueue's queue, kind, priority, attempts, payload) go as
    // one value rather than an array the client encodes element by element; ids as one literal (a uuid needs
    // no quoting)
    const queue = shared(jobs, (j) => j.queue)
    const kind = shared(jobs, (j) => j.kind)
    const payload = shared(jobs, (j) => JSON.stringify(j.payload))
    const priority = shared(jobs, (j) => j.priority)
    const maxAttempts = shared(jobs, (j) => j.maxAttempts)
    return sql`(
      SELECT u.id, coalesce(u.queue, ${queue.value}::text) AS queue, coalesce(u.kind, ${kind.value}::text) AS kind,
             coalesce(u.payload, ${payload.value}::jsonb) AS payload,
             coalesce(u.priority, ${priority.value}::smallint) AS priority,
             coalesce(u.max_attempts, ${maxAttempts.value}::integer) AS max_attempts,
             u.run_at, u.delay_ms, u.idempotency_key, u.request_hash, u.trace_context${
               unique ? sql`, u.unique_hash, u.unique_period_ms, u.unique_states` : sql``
             }
      FROM unnest(
        ${`{${jobs.map((j) => j.id).join(",")}}`}::uuid[],
        ${queue.values}::text[],
        ${kind.values}::text[],
        ${payload.values}::jsonb[],
        ${priority.values}::smallint[],
        ${maxAttempts.values}::integer[],
        ${column(jobs, (j) => j.runAt)}::timestamptz[],
        ${column(jobs, (j) => (j.delayMs === null ? null : String(j.delayMs)))}::bigint[],
        ${column(jobs, (j) => j.idempotencyKey)}::text[],
        ${column(jobs, (j) => j.requestHash)}::text[],
        ${column(jobs, (j) => (j.traceContext === null ? null : JSON.stringify(j.traceContext)))}::jsonb[]${
          unique
            ? sql`,
        ${column(jobs, (j) => j.unique?.hash ?? null)}::text[],
        ${column(jobs, (j) => (j.unique?.periodMs == null ? null : String(j.unique.periodMs)))}::bigint[],
        ${column(jobs, (j) => j.unique?.states ?? null)}::smallint[]`
            : sql``
        }
      ) AS u (id, queue, kind, payload, priority, max_attempts, run_at, delay_ms, idempotency_key,
              request_hash, trace_context${unique ? sql`, unique_hash, unique_period_ms, unique_states` : sql``})
    ) AS x`
  }

  const insertedColumns = sql.literal(`j.id, j.run_at AS "runAt", j.created_at AS "createdAt"`)

  const insertOne = (job: JobInsert) =>
    sql<InsertedRow>`
      INSERT INTO jobs AS j (id, queue, kind, payload, priority, max_attempts, run_at,
                             idempotency_key, request_hash, trace_context)
      VALUES (${job.id}, ${job.queue}, ${job.kind}, ${JSON.stringify(job.payload)}::jsonb, ${job.priority},
              ${job.maxAttempts},
              coalesce(${job.runAt}::timestamptz, now() + ${job.delayMs ?? 0} * interval '1 millisecond'),
              ${job.idempotencyKey}, ${job.requestHash},
              ${job.traceContext === null ? null : JSON.stringify(job.traceContext)}::jsonb)
      ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
      RETURNING ${insertedColumns}`.pipe(
      Effect.map((rows) => (rows[0] === undefined ? undefined : insertedJob(job, rows[0])))
    )

  /** `INSERT ... SELECT` of a batch without `unique`, for `insertAll` and `insertUnlessKeyTaken` to finish. */
  const insertBatch = (jobs: ReadonlyArray<JobInsert>) => sql`
      INSERT INTO jobs AS j (id, queue, kind, payload, priority, max_attempts, run_at,
                             idempotency_key, request_hash, trace_context)
      SELECT x.id, x.queue, x.kind, x.payload, x.priority, x.max_attempts, ${runAtOf},
             x.idempotency_key, x.request_hash, x.trace_context
      FROM ${batchSource(jobs, false)}`

  /**
   * A batch with no idempotency key: every row goes in, so the statement answers one row, the transaction's
   * `now()` (each row's `created_at`, and its `run_at` when it gave a delay or nothing), rather than a row per
   * job for the client to decode (with the payload change in Queue.ts's `prepare`, batch enqueues ran 13% faster,
   * bench/RESULTS.md). The jobs come back in the batch's order.
   */
  const insertAll = (jobs: ReadonlyArray<JobInsert>) =>
    sql<{ readonly inserted: number; readonly now: Date }>`
      WITH inserted AS (${insertBatch(jobs)} RETURNING 1)
      SELECT count(*)::int AS inserted, now() AS now FROM inserted`.pipe(
      Effect.flatMap(([answer]) => {
        if (answer === undefined || answer.inserted !== jobs.length)
          return Effect.die(new Error(`inserted ${answer?.inserted} of ${jobs.length} jobs`))
        const now = answer.now.getTime()
        return Effect.succeed(
          jobs.map((job) =>
            insertedJob(job, {
              id: job.id as JobId,
              runAt: job.runAt ?? new Date(now + (job.delayMs ?? 0)),
              createdAt: answer.now
            })
          )
        )
      })
    )

  /**
   * A batch of which some rows have an idempotency key: the jobs inserted (a job whose key was taken is not
   * among them), in no particular order.
   */
  const insertUnlessKeyTaken = (jobs: ReadonlyArray<JobInsert>) =>
    sql<InsertedRow>`
      ${insertBatch(jobs)}
      -- Take key locks in one global order: two batches sharing keys in different orders would deadlock.
      ORDER BY x.idempotency_key
      ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
      RETURNING ${insertedColumns}`.pipe(
      Effect.map((rows) => {
        const byId = new Map(jobs.map((job) => [job.id, job]))
        return rows.map((row) => insertedJob(byId.get(row.id)!, row))
      })
    )

  /**
   * Inserts jobs of which some asked for `unique`, skipping any that a unique index refuses (its idempotency
   * key or its unique key is taken), and answers every row: the job when inserted, and the unique key the
   * statement computed (by the database's clock, from the row's own `run_at`), so that the caller can look
   * the holder up. A row that waits on a concurrent insert of the same key is skipped once that commits.
   */
  const insertUnique = (jobs: ReadonlyArray<JobInsert>) =>
    sql<{ id: string; uniqueKey: string | null; runAt: Date | null; createdAt: Date | null }>`
      WITH rows AS MATERIALIZED (
        SELECT s.*, CASE WHEN s.unique_period_ms IS NULL THEN s.unique_hash
                         ELSE s.unique_hash || '@' || floor(extract(epoch FROM s.at) * 1000 / s.unique_period_ms)::bigint
                    END AS unique_key
        FROM (SELECT x.*, ${runAtOf} AS at FROM ${batchSource(jobs, true)}) s
      ), inserted AS (
        INSERT INTO jobs AS j (id, queue, kind, payload, priority, max_attempts, run_at,
                               idempotency_key, request_hash, trace_context, unique_key, unique_states)
        SELECT id, queue, kind, payload, priority, max_attempts, at, idempotency_key, request_hash,
               trace_context, unique_key, unique_states
        FROM rows
        -- keys locked in one global order, so that two batches sharing keys cannot deadlock
        ORDER BY unique_key, idempotency_key
        ON CONFLICT DO NOTHING
        RETURNING j.id, j.run_at, j.created_at
      )
      SELECT r.id, r.unique_key AS "uniqueKey", i.run_at AS "runAt", i.created_at AS "createdAt"
      FROM rows r LEFT JOIN inserted i ON i.id = r.id`.pipe(
      Effect.map((rows) => {
        const byId = new Map(jobs.map((job) => [job.id, job]))
        return rows.map(
          (row): UniqueInsertOutcome => ({
            id: row.id,
            uniqueKey: row.uniqueKey,
            job:
              row.runAt === null
                ? undefined
                : insertedJob(byId.get(row.id)!, {
                    id: row.id as JobId,
                    runAt: row.runAt,
                    createdAt: row.createdAt!
                  })
          })
        )
      })
    )

  /** The jobs holding these unique keys in one of their counted states. */
  const findByUniqueKeys = (keys: ReadonlyArray<string>) =>
    sql<Job & { readonly uniqueKey: string }>`
      SELECT ${columns}, j.unique_key AS "uniqueKey"
      FROM jobs j
      WHERE j.unique_key = ANY(${keys}::text[]) AND jobq_unique_counts(j.unique_states, j.status)`

  /** The jobs holding these idempotency keys, with the request hash each key was first used with. */
  const findByIdempotencyKeys = (keys: ReadonlyArray<string>) =>
    sql<Job & { readonly requestHash: string }>`
      SELECT ${columns}, j.request_hash AS "requestHash"
      FROM jobs j WHERE j.idempotency_key = ANY(${keys}::text[])`

  const get = (id: string) =>
    sql<Job>`SELECT ${columns} FROM jobs j WHERE j.id = ${id}`.pipe(Effect.map((rows) => rows[0]))

  /** The jobs with these ids that exist, in no particular order. */
  const getMany = (ids: ReadonlyArray<string>) =>
    sql<Job>`SELECT ${columns} FROM jobs j JOIN unnest(${ids}::uuid[]) AS x (id) ON j.id = x.id`

  /** What a listed job weighs: its unbounded columns as the JSON text a response carries. */
  const listedBytes = sql.literal(`octet_length(j.payload::text) + coalesce(octet_length(j.result::text), 0)
    + octet_length(j.errors::text) + coalesce(octet_length(j.last_error), 0)`)

  /**
   * A page in id order, bounded by count and by bytes. A walk over the matching ids, one index probe a
   * step (a recursive CTE), adds up what each job taken weighs and stops as soon as the page is full:
   * neither the database nor the API reads the payloads past the page (a page of 500 large payloads was
   * 157 MB). The walk goes one job past the page, without weighing it, to say whether more follow.
   */
  const list = (filter: ListFilter) => {
    const where = (after: Statement.Fragment | undefined) =>
      whereOf(sql, conditions(sql, filter, after, { withPayload: true, upTo: filter.upTo }))
    const inPage = sql`w.n <= ${filter.limit} AND w.before < ${filter.maxBytes ?? Number.MAX_SAFE_INTEGER}`
    return sql<Job & { readonly walked: number }>`
      WITH RECURSIVE walk (id, n, before) AS (
        (SELECT j.id, 1, 0::bigint FROM jobs j
         ${where(filter.after === undefined ? undefined : sql`${filter.after}::uuid`)}
         ORDER BY j.id LIMIT 1)
        UNION ALL
        (SELECT next.id, w.n + 1, w.before + weight.bytes
         FROM walk w
         CROSS JOIN LATERAL (SELECT ${listedBytes} AS bytes FROM jobs j WHERE j.id = w.id) weight
         CROSS JOIN LATERAL (SELECT j.id FROM jobs j ${where(sql`w.id`)} ORDER BY j.id LIMIT 1) next
         WHERE ${inPage})
      )
      SELECT ${columns}, (SELECT count(*) FROM walk)::integer AS walked
      FROM walk w JOIN jobs j ON j.id = w.id
      WHERE ${inPage}
      ORDER BY w.n`.pipe(
      Effect.map((rows): ListPage => {
        const jobs = rows.map(({ walked: _, ...job }) => job as Job)
        return { jobs, more: (rows[0]?.walked ?? 0) > rows.length }
      })
    )
  }

  // What a claim cannot know in advance; the rest of a claimed row is the same for every job it returns,
  // and decoding it for each row was a tenth of a busy worker's CPU (see `claimedJob`).
  const claimColumns = sql.literal(`j.id, j.queue, j.kind, j.payload, j.priority, j.attempts,
    j.max_attempts AS "maxAttempts", j.run_at AS "runAt", j.idempotency_key AS "idempotencyKey",
    j.last_error AS "lastError", j.errors, j.created_at AS "createdAt", j.started_at AS "startedAt",
    j.trace_context AS "traceContext", j.unstarted_rescues > 0 AS "recordStartFirst", j.snoozes, j.progress,
    j.flow_id AS "flowId", j.flow_name AS "flowName"`)

  /**
   * Queues no plain claim may take from: paused ones, and limited ones (claimed one queue at a time under
   * a lock, `QueueRepo.claimLimited`). Evaluated once per statement, through `queues_steered_idx`, so a
   * pause binds every claim that starts after it committed, whatever the workers were told.
   */
  const steered = sql.literal(
    "ARRAY(SELECT name FROM queues WHERE paused_at IS NOT NULL OR concurrency_limit IS NOT NULL OR rate_max IS NOT NULL)"
  )

  /**
   * Leases the jobs `ready` selected (and locked) to `workerId`, answered in claim order. They are found by
   * an array of their row versions' addresses (`ctid`, a TID scan): `ready` locked those versions in this
   * statement, so none can change before the update reaches it, and the update goes straight to the row
   * instead of descending the primary key once a job (-3.6% of Postgres's instructions a job keeping rows,
   * -4.6% deleting, bench/RESULTS.md). Joined to `ready` instead, the planner hashed the batch against a
   * sequential scan of the whole table on every claim (46 us of database CPU per claimed and completed job
   * against 27 us, 50,000 jobs claimed 500 at a time).
   */
  const compactColumns = sql.literal(compactClaimColumns)
  // while someone follows events: one event row for the whole claim (migrations/0012)
  const startedBatch = recordBatch(sql, "started", "claimed")
  const claimReady = (workerId: string, leaseMs: LeaseMs, ready: Statement.Fragment) =>
    sql<CompactClaimedRow>`
      WITH ready AS (${ready}), claimed AS (
        UPDATE jobs AS j
        SET status = 'running', attempts = j.attempts + 1, attempt_started = false, lease_owner = ${workerId},
            lease_expires_at = now() + ${leaseMs} * interval '1 millisecond',
            started_at = now(), finished_at = NULL, updated_at = now()
        WHERE j.ctid = ANY(ARRAY(SELECT ctid FROM ready))
          AND (SELECT set_config('synchronous_commit', 'off', true)) = 'off'
        RETURNING ${claimColumns}
      )
      -- in claim order: the worker starts them in the order they come
      SELECT ${compactColumns} FROM claimed c
      WHERE ${batchNow() ? startedBatch : sql.literal("true")}
      ORDER BY c.priority, c."runAt", c.id`.pipe(
      Effect.map((rows) => rows.map((row) => fromCompact(row, workerId, leaseMs)))
    )

  /**
   * Locks up to `limit` ready jobs in priority order, skipping rows other claimers hold, and leases them.
   *
   * The claim commits without waiting for its WAL flush (`synchronous_commit` off for its own transaction
   * only, set inside the statement): that wait was a whole disk flush on the path from enqueue to handler
   * and in every claim-run-complete cycle. Losing a claim costs nothing the queue promises: only a database
   * crash loses it (the last few hundred ms of such commits), and then the job is simply queued again, its
   * attempt uncounted; the worker that ran it cannot complete it (the guards see no lease of its own), so
   * another runs it, as after any crash. Completions still wait for their flush, and each one flushes every
   * claim before it. Call it in autocommit: inside a caller's transaction the setting would cover that
   * transaction's commit too. Jobs of paused and limited queues are never among them (`steered`).
   */
  const claim = (workerId: string, limit: number, leaseMs: LeaseMs, queues?: ReadonlyArray<string>) =>
    claimReady(
      workerId,
      leaseMs,
      // The steered queues are filtered out of the locked rows rather than in their scan: inside it, the
      // planner cannot know the array is (nearly always) empty, guessed that one row in thousands passes,
      // and sorted every ready job instead of reading the ready index in order (17 ms against 0.35 ms for
      // 500 of 20,000). A worker claims this way only while it knows of no steered queue it serves, so the
      // filter removes rows only in the moment before it hears of a pause; their locks end with the claim.
      //
      // Serving every queue, the claim's size is a sub-select, which hides it from the planner: a custom plan
      // (a parameter's value is a constant to it) then costs what the generic plan does, so after its first
      // five calls on a connection Postgres keeps the generic plan, the same one (the ready index in order,
      // then the primary key), instead of planning the statement again on every call whose size made a custom
      // plan look cheaper (a claim of 500 from 20,000 ready jobs: 0.2-0.5 ms of planning a call, 1% of the
      // database's work in a drain, bench/RESULTS.md). With a list of queues the planner must see the list's
      // values, so that claim is planned every time.
      sql`
        SELECT ctid FROM (
          SELECT ctid, queue FROM jobs
          WHERE status IN ('queued', 'retrying') AND run_at <= now()
          ${queues === undefined ? sql`` : sql`AND queue = ANY(${queues}::text[])`}
          ORDER BY priority, run_at, id
          LIMIT ${queues === undefined ? sql`(SELECT ${limit}::int)` : limit}
          FOR UPDATE SKIP LOCKED
        ) locked
        WHERE queue <> ALL(${steered})`
    )

  /**
   * `claim` queue by queue, for a worker that knows some queues are paused or limited: the plain claim
   * reads the ready jobs of every queue in one order and would step over a steered queue's whole backlog
   * on every call. Here each of `queues` is read through its own index (`jobs_queue_ready_idx`, which
   * only `priority::integer` makes the planner choose), at most `limit` rows each, locked as they are read; the best `limit` of them are claimed and the other locks
   * end with the statement. Steered queues are left out by the statement itself, whatever the caller
   * believes; a queue missing from `queues` is simply not claimed from.
   */
  const claimFromQueues = (
    workerId: string,
    limit: number,
    leaseMs: LeaseMs,
    queues: ReadonlyArray<string>
  ) =>
    claimReady(
      workerId,
      leaseMs,
      sql`
        SELECT c.ctid FROM unnest(${queues}::text[]) AS q (name)
        CROSS JOIN LATERAL (
          SELECT ctid, id, priority, run_at FROM jobs
          WHERE status IN ('queued', 'retrying') AND run_at <= now() AND queue = q.name
          ORDER BY priority::integer, run_at, id
          LIMIT ${limit}
          FOR UPDATE SKIP LOCKED
        ) c
        WHERE q.name <> ALL(${steered})
        ORDER BY c.priority, c.run_at, c.id
        LIMIT ${limit}`
    )

  const succeededBatch = recordBatch(sql, "succeeded", "done")

  /**
   * Marks jobs succeeded with their results; returns the ids this worker still held. While someone follows
   * events, their `succeeded` events are one row (migrations/0012).
   */
  const complete = (
    workerId: string,
    results: ReadonlyArray<{ readonly id: string; readonly result: unknown }>
  ) => {
    // a batch in which no handler returned anything (common: jobs run for their effects) sends the ids
    // alone, sparing both sides a JSON document of nulls
    const withResults = anyResult(results)
    const batch = withResults
      ? sql`jsonb_to_recordset(${recordsetText(results)}::jsonb) AS x (id uuid, result jsonb)`
      : sql`unnest(${results.map((r) => r.id)}::uuid[]) AS x (id)`
    const update = sql`
      UPDATE jobs AS j
      SET status = 'succeeded', result = ${withResults ? sql`x.result` : sql`NULL`}, finished_at = now(),
          updated_at = now(), lease_owner = NULL, lease_expires_at = NULL
      FROM ${batch}
      WHERE j.id = x.id AND j.status = 'running' AND j.lease_owner = ${heldBy(workerId)}`
    const answer = heldAnswer(sql, results.length)
    return (
      batchNow()
        ? sql<HeldAnswer>`
      WITH done AS (${update} RETURNING j.id, j.queue, j.kind, j.attempts)
      SELECT ${answer} FROM done WHERE ${succeededBatch}`
        : sql<HeldAnswer>`WITH done AS (${update} RETURNING j.id) SELECT ${answer} FROM done`
    ).pipe(Effect.map(heldIds(results)))
  }

  /**
   * Records a failed attempt: `retrying` after the delay, or `failed_permanent` when attempts are spent or
   * the failure is permanent, or `cancelled` when a cancel was requested meanwhile. Undefined when the
   * worker no longer held the job.
   */
  const fail = (workerId: string, input: FailInput) => {
    const error = truncate(input.error)
    return sql<Job>`
      WITH outcome AS (
        SELECT id,
               CASE WHEN cancel_requested_at IS NOT NULL THEN 'cancelled'
                    WHEN ${input.permanent} OR attempts >= max_attempts THEN 'failed_permanent'
                    ELSE 'retrying' END AS status
        FROM jobs WHERE id = ${input.id} AND status = 'running' AND lease_owner = ${workerId}
        -- locked as it is read: a cancel that commits meanwhile is seen (the outcome reads the row after it)
        FOR UPDATE
      )
      UPDATE jobs AS j
      SET status = o.status,
          run_at = CASE WHEN o.status = 'retrying'
                        THEN now() + ${input.retryDelayMs} * interval '1 millisecond' ELSE j.run_at END,
          finished_at = CASE WHEN o.status = 'retrying' THEN NULL ELSE now() END,
          last_error = ${error},
          errors = j.errors || jsonb_build_array(jsonb_build_object(
            'attempt', j.attempts, 'at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 'error', ${error}::text,
            'retryDelayMs', CASE WHEN o.status = 'retrying' THEN ${input.retryDelayMs}::integer END,
            'dueAt', ${attemptDue}, 'startedAt', ${attemptStart})),
          lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
      FROM outcome o
      WHERE j.id = o.id AND j.status = 'running' AND j.lease_owner = ${workerId}
      RETURNING ${columns}`.pipe(Effect.map((rows) => rows[0]))
  }

  /**
   * Ends a running job's attempt without spending it: back to the queue after `delayMs`, `snoozes` counted.
   * A job that already snoozed `maxSnoozes` times fails permanently instead; one whose cancel was requested
   * ends `cancelled`. Undefined when the worker no longer held the job.
   */
  const snooze = (workerId: string, id: string, delayMs: number, maxSnoozes: number) => {
    const tooMany = `snoozed ${maxSnoozes} times: a job may snooze at most ${maxSnoozes} times`
    return sql<Job>`
      WITH outcome AS (
        SELECT id,
               CASE WHEN cancel_requested_at IS NOT NULL THEN 'cancelled'
                    WHEN snoozes >= ${maxSnoozes} THEN 'failed_permanent'
                    WHEN attempts <= 1 THEN 'queued' ELSE 'retrying' END AS status
        FROM jobs WHERE id = ${id} AND status = 'running' AND lease_owner = ${workerId}
        -- locked as it is read: a cancel that commits meanwhile is seen (the outcome reads the row after it)
        FOR UPDATE
      )
      UPDATE jobs AS j
      SET status = o.status,
          attempts = CASE WHEN o.status IN ('queued', 'retrying') THEN greatest(j.attempts - 1, 0) ELSE j.attempts END,
          snoozes = j.snoozes + (o.status IN ('queued', 'retrying'))::integer,
          run_at = CASE WHEN o.status IN ('queued', 'retrying')
                        THEN now() + ${delayMs} * interval '1 millisecond' ELSE j.run_at END,
          finished_at = CASE WHEN o.status IN ('queued', 'retrying') THEN NULL ELSE now() END,
          last_error = CASE WHEN o.status = 'failed_permanent' THEN ${tooMany} ELSE j.last_error END,
          errors = CASE WHEN o.status = 'failed_permanent'
                        THEN j.errors || jsonb_build_array(jsonb_build_object('attempt', j.attempts,
                               'at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                               'error', ${tooMany}::text, 'retryDelayMs', NULL,
                               'dueAt', ${attemptDue}, 'startedAt', ${attemptStart}))
                        ELSE j.errors END,
          lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
      FROM outcome o
      WHERE j.id = o.id AND j.status = 'running' AND j.lease_owner = ${workerId}
      RETURNING ${columns}`.pipe(Effect.map((rows) => rows[0]))
  }

  /**
   * Stores a running job's progress (JSON text, already bounded). Touches no indexed column, so the update
   * can stay HOT; answers whether this worker still held the job.
   */
  const setProgress = (workerId: string, id: string, progress: string) =>
    sql<{ id: JobId }>`
      UPDATE jobs SET progress = ${progress}::jsonb
      WHERE id = ${id} AND status = 'running' AND lease_owner = ${workerId}
      RETURNING id`.pipe(Effect.map((rows) => rows.length > 0))

  /** Ends a running job as `cancelled` after its handler was interrupted on request. */
  const settleCancelled = (workerId: string, id: string) =>
    sql<{ id: JobId }>`
      UPDATE jobs
      SET status = 'cancelled', finished_at = now(), updated_at = now(), lease_owner = NULL,
          lease_expires_at = NULL
      WHERE id = ${id} AND status = 'running' AND lease_owner = ${workerId}
      RETURNING id`.pipe(Effect.map((rows) => rows.length > 0))

  /**
   * Gives running jobs back to the queue without spending their attempt (shutdown). A job whose cancel
   * was requested ends `cancelled` instead. Returns the ids released.
   */
  const release = (workerId: string, ids: ReadonlyArray<string>) =>
    sql<{ id: JobId }>`
      WITH released AS (
        UPDATE jobs AS j
        SET status = CASE WHEN j.cancel_requested_at IS NOT NULL THEN 'cancelled'
                          WHEN j.attempts <= 1 THEN 'queued' ELSE 'retrying' END,
            attempts = CASE WHEN j.cancel_requested_at IS NOT NULL THEN j.attempts
                            ELSE greatest(j.attempts - 1, 0) END,
            finished_at = CASE WHEN j.cancel_requested_at IS NOT NULL THEN now() END,
            run_at = now(), lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
        FROM unnest(${ids}::uuid[]) AS x (id)
        WHERE j.id = x.id AND j.status = 'running' AND j.lease_owner = ${workerId}
        RETURNING j.id, j.queue
      )
      SELECT id, pg_notify('jobq_ready', queue) FROM released`.pipe(
      Effect.map((rows) => rows.map((r) => r.id))
    )

  /**
   * Looks at the leases this worker holds: answers which it still holds, whether each was asked to cancel,
   * and whether its lease was extended. Writes a job's row only when its lease is `due` or its start is
   * still to be recorded (once per attempt); a lease that is not due costs an index lookup, no write, so a
   * worker can look every second and extend each lease only once per half lease.
   *
   * It never waits for a row lock: a held job whose row another transaction has locked (this worker's own
   * batched completion, a cancel) is skipped this round (`renewed: false`, still held as far as the
   * last committed state says) instead of locked in whatever order the join meets it. Waiting there is how
   * a renewal and a batched completion of the same worker deadlocked: each locked some of the same rows and
   * waited for the other's. A row locked that briefly is renewed at the next round, well inside the lease.
   */
  const renewLeases = (workerId: string, leases: ReadonlyArray<HeldLease>, leaseMs: number) => {
    const ids = leases.map((l) => l.id)
    return sql<LeaseState>`
      WITH x AS (
        SELECT * FROM unnest(${ids}::uuid[], ${leases.map((l) => l.started)}::boolean[],
                             ${leases.map((l) => l.due ?? true)}::boolean[]) AS x (id, started, due)
      ), locked AS (
        SELECT j.id, x.started, x.due FROM jobs AS j JOIN x ON j.id = x.id
        WHERE j.status = 'running' AND j.lease_owner = ${heldBy(workerId)}
          AND (x.due OR (x.started AND NOT j.attempt_started))
        FOR UPDATE OF j SKIP LOCKED
      ), written AS (
        UPDATE jobs AS j
        SET lease_expires_at = CASE WHEN l.due THEN now() + ${leaseMs} * interval '1 millisecond'
                                    ELSE j.lease_expires_at END,
            attempt_started = j.attempt_started OR l.started
        FROM locked AS l
        WHERE j.id = l.id
        RETURNING j.id, j.cancel_requested_at IS NOT NULL AS "cancelRequested", l.due AS renewed
      )
      SELECT id, "cancelRequested", renewed FROM written
      UNION ALL
      SELECT id, cancel_requested_at IS NOT NULL, false FROM jobs
      WHERE id = ANY(${ids}::uuid[]) AND status = 'running' AND lease_owner = ${workerId}
        AND id NOT IN (SELECT id FROM written)`
  }

  /** Records that these jobs' handlers start now (before they run); answers the ids this worker still holds. */
  const markStarted = (workerId: string, ids: ReadonlyArray<string>) =>
    sql<{ id: JobId }>`
      UPDATE jobs AS j
      SET attempt_started = true
      FROM unnest(${ids}::uuid[]) AS x (id)
      WHERE j.id = x.id AND j.status = 'running' AND j.lease_owner = ${heldBy(workerId)}
      RETURNING j.id`.pipe(Effect.map((rows) => rows.map((r) => r.id)))

  /**
   * Gives the running jobs `which` selects (and locks) back to the queue, as their worker can no longer run
   * them. One whose handler had started goes back to `retrying`, or ends `failed_permanent` when that was its
   * last attempt: the crashed attempt counts, so a job that kills its worker cannot loop forever. One whose
   * start was never recorded (it waited in the worker's buffer, or its worker died within a renewal interval
   * of starting it) goes back to the queue with its attempt refunded; `unstarted_rescues` counts it, so that
   * its next worker records the start first. Either way `errors` says what happened. A job whose cancel was
   * pending ends `cancelled`.
   */
  const takeBack = (
    which: Statement.Fragment,
    why = {
      error: sql`'lease expired: worker ' || lease_owner || ' stopped renewing it'`,
      refunded: " before recording that the job started; attempt not counted"
    }
  ) =>
    sql<{ id: JobId; status: JobStatus; leaseOwner: string; refunded: boolean; notified: unknown }>`
      WITH expired AS (
        SELECT id, lease_owner, cancel_requested_at IS NULL AND NOT attempt_started AS refund,
               ${why.error} ||
                 CASE WHEN cancel_requested_at IS NULL AND NOT attempt_started
                      THEN ${why.refunded}::text ELSE '' END
                 AS error
        FROM jobs AS j
        ${which}
        FOR UPDATE OF j SKIP LOCKED
      ), rescued AS (
        UPDATE jobs AS j
        SET status = CASE WHEN j.cancel_requested_at IS NOT NULL THEN 'cancelled'
                          WHEN e.refund THEN CASE WHEN j.attempts <= 1 THEN 'queued' ELSE 'retrying' END
                          WHEN j.attempts >= j.max_attempts THEN 'failed_permanent'
                          ELSE 'retrying' END,
            attempts = CASE WHEN e.refund THEN greatest(j.attempts - 1, 0) ELSE j.attempts END,
            unstarted_rescues = j.unstarted_rescues + e.refund::integer,
            finished_at = CASE WHEN j.cancel_requested_at IS NOT NULL
                                 OR (NOT e.refund AND j.attempts >= j.max_attempts) THEN now() END,
            last_error = e.error,
            errors = j.errors || jsonb_build_array(jsonb_build_object(
              'attempt', j.attempts, 'at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
              'error', e.error, 'retryDelayMs', NULL, 'dueAt', ${attemptDue}, 'startedAt', ${attemptStart})),
            run_at = now(), lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
        FROM expired e WHERE j.id = e.id
        RETURNING j.id, j.queue, j.status, e.lease_owner, e.refund
      )
      SELECT id, status, lease_owner AS "leaseOwner", refund AS refunded, pg_notify('jobq_ready', queue) AS notified
      FROM rescued`.pipe(Effect.map((rows) => rows.map(({ notified: _, ...row }) => row)))

  /**
   * Running jobs whose lease ran out (their worker died or stalled), taken back (`takeBack`). A job with a
   * lease of its own (claimed by a worker from before migration 0013, or with an explicit lease) is rescued
   * once that lease ran out. One without is held by its owner's row in `workers`: rescued when the row is
   * gone, its lease ran out, or the lease began after the job's claim (the worker lost it since).
   */
  const rescueExpired = (limit = 1000) =>
    takeBack(sql`
      WHERE j.status = 'running'
        AND CASE WHEN j.lease_expires_at IS NOT NULL THEN j.lease_expires_at < now()
                 ELSE NOT EXISTS (SELECT 1 FROM workers w
                                  WHERE w.id = j.lease_owner AND w.lease_expires_at > now()
                                    AND w.live_since <= j.started_at) END
      ORDER BY j.started_at
      LIMIT ${limit}`)

  /**
   * Jobs this worker holds but gave up on without settling them (it stopped them when it could not
   * heartbeat in time, or their settlement failed): taken back (`takeBack`) at once, as the rescuer would
   * once the worker's lease ran out, which, while the worker lives, it does not. Answers the ids taken back;
   * a job already settled or rescued is left alone.
   */
  const abandon = (workerId: string, ids: ReadonlyArray<string>) =>
    takeBack(sql`
      WHERE j.id = ANY(${ids}::uuid[]) AND j.status = 'running' AND j.lease_owner = ${workerId}`).pipe(
      Effect.map((rows) => rows.map((r) => r.id))
    )

  /**
   * Running jobs this worker holds in the database but not in memory (`held`, what it knows it holds), taken
   * back (`takeBack`): a claim that committed but whose answer never reached the worker (the connection
   * broke, the server was killed after its commit reached disk). While the worker lives, its heartbeat
   * would hold them forever. Run only when no claim of this worker is in flight, so that every claim that
   * committed has landed in `held` or failed; a job `held` leaves before its hand-back commits (a release
   * in flight) must be among `held` too. Scans the running jobs (the lease index covers them all).
   */
  const handBackStrays = (workerId: string, held: ReadonlyArray<string>) =>
    takeBack(
      sql`
        WHERE j.status = 'running' AND j.lease_owner = ${workerId} AND j.lease_expires_at IS NULL
          AND NOT (j.id = ANY(${held}::uuid[]))`,
      {
        error: sql`'claim lost: worker ' || lease_owner || ' never received the answer of the claim that took it'`,
        refunded: "; attempt not counted"
      }
    ).pipe(Effect.map((rows) => rows.map((r) => r.id)))

  /**
   * Queued or retrying -> `cancelled`; running -> cancel requested (its worker is notified and settles it).
   * Undefined when the job is unknown or already finished.
   */
  const cancel = (id: string) =>
    sql<Job>`
      UPDATE jobs AS j
      SET status = CASE WHEN j.status = 'running' THEN j.status ELSE 'cancelled' END,
          finished_at = CASE WHEN j.status = 'running' THEN j.finished_at ELSE now() END,
          cancel_requested_at = coalesce(j.cancel_requested_at, now()),
          updated_at = now()
      WHERE j.id = ${id} AND j.status IN ('queued', 'retrying', 'running')
      RETURNING ${columns}`.pipe(Effect.map((rows) => rows[0]))

  /** `failed_permanent` or `cancelled` -> `queued` with fresh attempts. Undefined when not in those states. */
  const retry = (id: string) =>
    sql<Job & { readonly notified: unknown }>`
      WITH requeued AS (
        UPDATE jobs AS j
        SET status = 'queued', attempts = 0, run_at = now(), cancel_requested_at = NULL,
            finished_at = NULL, started_at = NULL, updated_at = now(),
            -- fresh in every count: snoozes, refunded rescues and the last run's progress go too
            snoozes = 0, unstarted_rescues = 0, attempt_started = false, progress = NULL
        WHERE j.id = ${id} AND j.status IN ('failed_permanent', 'cancelled')
        RETURNING ${columns}
      )
      SELECT r.*, pg_notify('jobq_ready', r.queue) AS notified FROM requeued r`.pipe(
      // the notification's (void) column is not part of the job
      Effect.map((rows) => {
        if (rows[0] === undefined) return undefined
        const { notified: _, ...job } = rows[0]
        return job as Job
      })
    )

  /**
   * Whether Postgres has never gathered statistics on the jobs table (`reltuples` is -1 until the first
   * ANALYZE or VACUUM), and how many rows it holds by the cumulative statistics.
   */
  const statistics = sql<{ unknown: boolean; liveRows: number }>`
    SELECT c.reltuples < 0 AS unknown, coalesce(s.n_live_tup, 0)::float8 AS "liveRows"
    FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
    WHERE c.oid = 'jobs'::regclass`.pipe(Effect.map((rows) => rows[0]))

  const analyze = sql`ANALYZE jobs`.pipe(Effect.asVoid)

  /**
   * Unfinished jobs by queue and status, and the age of each queue's oldest ready job (for metrics). Two
   * halves, each with the predicate of one partial index (ready jobs, running jobs), so that neither reads
   * the finished jobs: one `WHERE status IN` (all three) matches neither index, and scanned the whole table
   * (156 ms for a million finished jobs, against 4 ms this way).
   */
  const depth = sql<{ queue: string; status: JobStatus; count: number; oldestReadySeconds: number | null }>`
    SELECT queue, status, count(*)::integer AS count,
           extract(epoch FROM now() - min(run_at) FILTER (WHERE run_at <= now()))::float8 AS "oldestReadySeconds"
    FROM jobs WHERE status IN ('queued', 'retrying')
    GROUP BY queue, status
    UNION ALL
    SELECT queue, status, count(*)::integer, NULL::float8
    FROM jobs WHERE status = 'running'
    GROUP BY queue, status`

  return {
    /** Whether a follower holds (or waits for) the events gate in this database. */
    followersPresent: followersPresent(sql),
    depth,
    statistics,
    analyze,
    insertOne,
    insertAll,
    insertUnlessKeyTaken,
    insertUnique,
    findByIdempotencyKeys,
    findByUniqueKeys,
    get,
    getMany,
    list,
    claim,
    claimFromQueues,
    complete,
    fail,
    snooze,
    setProgress,
    settleCancelled,
    release,
    renewLeases,
    markStarted,
    rescueExpired,
    abandon,
    handBackStrays,
    cancel,
    retry
  } satisfies Record<
    string,
    | ((...args: never) => Effect.Effect<unknown, SqlError.SqlError>)
    | Effect.Effect<unknown, SqlError.SqlError>
  >
})

/**
 * A column no row leaves null: one `value` when every row holds the same (and no array), else the array and
 * no value; the statement takes `coalesce(array element, value)`.
 */
const shared = <A>(jobs: ReadonlyArray<JobInsert>, get: (job: JobInsert) => A) => {
  const values = jobs.map(get)
  const first = values[0] ?? null
  return values.every((v) => v === first) ? { values: [] as Array<A>, value: first } : { values, value: null }
}

/**
 * One column of a batch as an array parameter for `unnest`. A column with no value at all goes as an empty
 * array: the driver cannot type an array of nulls, and `unnest` pads a shorter array with nulls anyway.
 * Strings bind as text and the statement casts them (a delay can exceed int4, and one array has one type).
 */
const column = <A>(jobs: ReadonlyArray<JobInsert>, value: (job: JobInsert) => A | null): Array<A | null> => {
  const values = jobs.map(value)
  return values.every((v) => v === null) ? [] : values
}

export class JobRepo extends Context.Service<JobRepo, Effect.Success<typeof make>>()("jobq/JobRepo") {
  static readonly layer = Layer.effect(JobRepo, make)
  /** The same statements on another client (a worker's claims on their own session: `ClaimSession`). */
  static readonly on = (client: SqlClient.SqlClient) =>
    make.pipe(Effect.provideService(SqlClient.SqlClient, client))
}
