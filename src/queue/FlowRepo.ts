/**
 * Every SQL statement of flows, one named method each. The unblocking itself is not here: the database
 * does it in the transaction of whatever statement ended a flow job (`jobq_flow_advance`, migration 0007),
 * so every path that finishes a job moves its flow on. Methods fail with `SqlError` only; the rules live in
 * `Flows`.
 */
import { Context, Effect, Layer } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import type { FailurePolicy, FlowJob } from "../domain/Flow.ts"
import type { JobId, JobStatus } from "../domain/Job.ts"
import { batchForm, recordBatch } from "./eventBatch.ts"
import { type HeldAnswer, heldAnswer, heldByOf, heldIds } from "./heldAnswer.ts"
import type { JobInsert } from "./JobRepo.ts"
import { anyResult, recordsetText } from "./results.ts"

/** A flow job ready to insert: its row, its local name and how many dependencies it waits for. */
export interface FlowJobInsert extends JobInsert {
  readonly name: string
  readonly pendingDeps: number
}

export interface FlowInsert {
  readonly id: string
  readonly onFailure: FailurePolicy
  readonly jobs: ReadonlyArray<FlowJobInsert>
  /** `[dependency id, dependent id]` */
  readonly edges: ReadonlyArray<readonly [string, string]>
}

export interface InsertedFlowJob {
  readonly id: JobId
  readonly status: JobStatus
  readonly runAt: Date
  readonly createdAt: Date
}

export interface FlowRow {
  readonly id: string
  readonly onFailure: FailurePolicy
  readonly createdAt: Date
  readonly cancelledAt: Date | null
}

/** The refusal to queue or run a job that still waits for dependencies (`jobs_blocked_until_deps`). */
export const isBlockedByDependencies = (error: { readonly _tag: string }) => {
  if (error._tag !== "SqlError") return false
  const cause = (error as SqlError.SqlError).reason.cause as { readonly code?: unknown } | undefined
  return cause?.code === "23514"
}

/**
 * A claimed job's dependencies' results by local name (null outside flows), as one column of a claim:
 * `id` and `flowId` are the SQL expressions of the claimed job's id and flow. A job outside a flow costs
 * the null test only (probing `job_deps` for each of them was 1-4 us per claimed job, measured with
 * EXPLAIN ANALYZE on 500); a flow's job one call of `jobq_job_parents` (migrations/0014): one probe of
 * `job_deps_job_idx` and one primary-key read per dependency. A function rather than a sub-select, so that
 * the claim, planned on every call, does not plan that join each time. The function is STABLE: it reads
 * with the claim's snapshot, which sees the dependencies' results (they committed with the statement that
 * queued the job).
 */
export const parentsExpression = (id: string, flowId: string) =>
  `CASE WHEN ${flowId} IS NULL THEN NULL ELSE jobq_job_parents(${id}) END`
export const parentsColumn = (id: string, flowId: string) => `${parentsExpression(id, flowId)} AS parents`

const column = <A>(jobs: ReadonlyArray<FlowJobInsert>, value: (job: FlowJobInsert) => A | null) => {
  const values = jobs.map(value)
  return values.every((v) => v === null) ? [] : values
}

const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient

  /**
   * Inserts a flow: its row, its jobs (`blocked` when they wait for any dependency, else `queued`) and its
   * edges. Three statements; call it inside a transaction (all or none).
   */
  const insert = (flow: FlowInsert) =>
    Effect.gen(function* () {
      yield* sql`INSERT INTO flows (id, on_failure, job_count) VALUES (${flow.id}, ${flow.onFailure}, ${flow.jobs.length})`
      const jobs = flow.jobs
      const rows = yield* sql<InsertedFlowJob>`
        INSERT INTO jobs AS j (id, queue, kind, payload, priority, max_attempts, run_at, trace_context,
                               flow_id, flow_name, pending_deps, status)
        SELECT x.id, x.queue, x.kind, x.payload, x.priority, x.max_attempts,
               coalesce(x.run_at, now() + coalesce(x.delay_ms, 0) * interval '1 millisecond'),
               x.trace_context, ${flow.id}, x.name, x.pending,
               CASE WHEN x.pending > 0 THEN 'blocked' ELSE 'queued' END
        FROM unnest(
          ${column(jobs, (j) => j.id)}::uuid[],
          ${column(jobs, (j) => j.queue)}::text[],
          ${column(jobs, (j) => j.kind)}::text[],
          ${column(jobs, (j) => JSON.stringify(j.payload))}::jsonb[],
          ${column(jobs, (j) => j.priority)}::smallint[],
          ${column(jobs, (j) => j.maxAttempts)}::integer[],
          ${column(jobs, (j) => j.runAt)}::timestamptz[],
          ${column(jobs, (j) => (j.delayMs === null ? null : String(j.delayMs)))}::bigint[],
          ${column(jobs, (j) => (j.traceContext === null ? null : JSON.stringify(j.traceContext)))}::jsonb[],
          ${column(jobs, (j) => j.name)}::text[],
          ${column(jobs, (j) => j.pendingDeps)}::integer[]
        ) AS x (id, queue, kind, payload, priority, max_attempts, run_at, delay_ms, trace_context, name, pending)
        RETURNING j.id, j.status, j.run_at AS "runAt", j.created_at AS "createdAt"`
      if (flow.edges.length > 0) {
        yield* sql`
          INSERT INTO job_deps (depends_on, job_id)
          SELECT * FROM unnest(${flow.edges.map((e) => e[0])}::uuid[], ${flow.edges.map((e) => e[1])}::uuid[])`
      }
      return rows
    })

  const get = (id: string) =>
    sql<FlowRow>`
      SELECT id, on_failure AS "onFailure", created_at AS "createdAt", cancelled_at AS "cancelledAt"
      FROM flows WHERE id = ${id}`.pipe(Effect.map((rows) => rows[0]))

  /** Every job of a flow with the names of its dependencies, in id order (the order they were given). */
  const jobs = (id: string) =>
    sql<FlowJob>`
      SELECT j.id, j.flow_name AS name, j.kind, j.queue, j.status, j.attempts, j.last_error AS "lastError",
             j.created_at AS "createdAt", j.finished_at AS "finishedAt",
             ARRAY(SELECT p.flow_name FROM job_deps d JOIN jobs p ON p.id = d.depends_on
                   WHERE d.job_id = j.id ORDER BY p.id) AS "dependsOn"
      FROM jobs j WHERE j.flow_id = ${id} ORDER BY j.id`

  /** Marks the flow cancelled (once); undefined for an unknown flow. */
  const markCancelled = (id: string) =>
    sql<FlowRow>`
      UPDATE flows SET cancelled_at = coalesce(cancelled_at, now()) WHERE id = ${id}
      RETURNING id, on_failure AS "onFailure", created_at AS "createdAt", cancelled_at AS "cancelledAt"`.pipe(
      Effect.map((rows) => rows[0])
    )

  const cancelledBy = (reason: string) => sql`
    status = 'cancelled', finished_at = now(), updated_at = now(),
    cancel_requested_at = coalesce(j.cancel_requested_at, now()), last_error = ${reason},
    errors = j.errors || jsonb_build_array(jsonb_build_object(
      'attempt', j.attempts, 'at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
      'error', ${reason}::text, 'retryDelayMs', NULL))`

  /**
   * Cancels a flow's queued and retrying jobs, skipping any that another transaction holds (a claim: the
   * job is then running, and `requestCancelRunning` reaches it). Never waits on a lock.
   */
  const cancelReady = (id: string, reason: string) =>
    sql<{ id: JobId }>`
      WITH target AS (
        SELECT id FROM jobs WHERE flow_id = ${id} AND status IN ('queued', 'retrying')
        ORDER BY id FOR UPDATE SKIP LOCKED
      )
      UPDATE jobs AS j SET ${cancelledBy(reason)}
      FROM target t WHERE j.id = t.id
      RETURNING j.id`.pipe(Effect.map((rows) => rows.length))

  /**
   * Cancels a flow's blocked jobs, their rows locked in id order (the order every statement that moves
   * flows locks blocked jobs in, so none of them can deadlock with this one).
   */
  const cancelBlocked = (id: string, reason: string) =>
    sql<{ id: JobId }>`
      WITH target AS (
        SELECT id FROM jobs WHERE flow_id = ${id} AND status = 'blocked' ORDER BY id FOR UPDATE
      )
      UPDATE jobs AS j SET ${cancelledBy(reason)}
      FROM target t WHERE j.id = t.id AND j.status = 'blocked'
      RETURNING j.id`.pipe(Effect.map((rows) => rows.length))

  /** A flow's running jobs whose cancel was not requested yet. */
  const runningUncancelled = (id: string) =>
    sql<{ id: JobId }>`
      SELECT id FROM jobs WHERE flow_id = ${id} AND status = 'running' AND cancel_requested_at IS NULL`.pipe(
      Effect.map((rows) => rows.map((r) => r.id))
    )

  /** How many of the flow's jobs are unfinished and not on their way to `cancelled`. */
  const unsettled = (id: string) =>
    sql<{ count: number }>`
      SELECT count(*)::integer AS count FROM jobs
      WHERE flow_id = ${id}
        AND (status IN ('queued', 'retrying', 'blocked') OR (status = 'running' AND cancel_requested_at IS NULL))`.pipe(
      Effect.map((rows) => rows[0]?.count ?? 0)
    )

  /** Cancels one blocked job (POST /jobs/{id}/cancel on a job waiting in a flow); whether it was blocked. */
  const cancelOneBlocked = (id: string) =>
    sql<{ id: JobId }>`
      UPDATE jobs AS j SET ${cancelledBy("cancelled while blocked")}
      WHERE j.id = ${id} AND j.status = 'blocked'
      RETURNING j.id`.pipe(Effect.map((rows) => rows.length > 0))

  /**
   * A retry of a flow job whose dependencies have not all succeeded (`jobs_blocked_until_deps` refused to
   * queue it): fresh attempts, as `JobRepo.retry` gives, but `blocked` until they have. Whether it was retried.
   */
  const retryBlocked = (id: string) =>
    sql<{ id: JobId }>`
      UPDATE jobs
      SET status = 'blocked', attempts = 0, run_at = now(), cancel_requested_at = NULL, finished_at = NULL,
          started_at = NULL, updated_at = now(), snoozes = 0, unstarted_rescues = 0, attempt_started = false,
          progress = NULL
      WHERE id = ${id} AND status IN ('failed_permanent', 'cancelled') AND pending_deps > 0
        -- not when a dependency it waits for was deleted (migration 0011): it would wait for ever
        AND NOT EXISTS (
          SELECT 1 FROM job_deps d
          WHERE d.job_id = jobs.id AND NOT d.satisfied AND NOT EXISTS (SELECT 1 FROM jobs p WHERE p.id = d.depends_on))
      RETURNING id`.pipe(Effect.map((rows) => rows.length > 0))

  /** Whether the job belongs to a cancelled flow. */
  const inCancelledFlow = (id: string) =>
    sql<{ id: string }>`
      SELECT f.id FROM jobs j JOIN flows f ON f.id = j.flow_id
      WHERE j.id = ${id} AND f.cancelled_at IS NOT NULL`.pipe(Effect.map((rows) => rows.length > 0))

  /**
   * The completion of `JOB_RETENTION=0`: deletes succeeded jobs outside flows, and marks flow jobs
   * succeeded with their results instead (their dependents read them, and GET /flows/{id} shows them;
   * they are deleted with their flow). Returns the ids this worker still held.
   */
  const succeededBatch = recordBatch(sql, "succeeded", "done")
  const batchNow = yield* batchForm
  const heldBy = heldByOf(sql)
  const completeDeleting = (
    workerId: string,
    results: ReadonlyArray<{ readonly id: string; readonly result: unknown }>
  ) =>
    sql<HeldAnswer>`
      WITH x AS MATERIALIZED (
        ${
          // a batch in which no handler returned anything sends the ids alone, as `complete` does
          anyResult(results)
            ? sql`SELECT * FROM jsonb_to_recordset(${recordsetText(results)}::jsonb) AS x (id uuid, result jsonb)`
            : sql`SELECT id, NULL::jsonb AS result FROM unnest(${results.map((r) => r.id)}::uuid[]) AS x (id)`
        }
      ), kept AS (
        UPDATE jobs AS j
        SET status = 'succeeded', result = x.result, finished_at = now(), updated_at = now(),
            lease_owner = NULL, lease_expires_at = NULL
        FROM x
        WHERE j.id = x.id AND j.status = 'running' AND j.lease_owner = ${heldBy(workerId)} AND j.flow_id IS NOT NULL
        RETURNING j.id, j.queue, j.kind, j.attempts
      ), gone AS (
        DELETE FROM jobs AS j USING x
        WHERE j.id = x.id AND j.status = 'running' AND j.lease_owner = ${heldBy(workerId)} AND j.flow_id IS NULL
        RETURNING j.id, j.queue, j.kind, j.attempts
      ), done AS (
        SELECT * FROM kept UNION ALL SELECT * FROM gone
      )
      -- while someone follows events: one event row for the whole batch (migrations/0012)
      SELECT ${heldAnswer(sql, results.length)} FROM done
      WHERE ${batchNow() ? succeededBatch : sql.literal("true")}`.pipe(Effect.map(heldIds(results)))

  return {
    insert,
    get,
    jobs,
    markCancelled,
    cancelReady,
    cancelBlocked,
    runningUncancelled,
    unsettled,
    cancelOneBlocked,
    retryBlocked,
    inCancelledFlow,
    completeDeleting
  } satisfies Record<
    string,
    | ((...args: never) => Effect.Effect<unknown, SqlError.SqlError>)
    | Effect.Effect<unknown, SqlError.SqlError>
  >
})

export class FlowRepo extends Context.Service<FlowRepo, Effect.Success<typeof make>>()("jobq/FlowRepo") {
  static readonly layer = Layer.effect(FlowRepo, make)
}
