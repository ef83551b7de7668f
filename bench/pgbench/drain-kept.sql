-- One cycle of a worker draining a backlog, with the statements exactly as the worker sends them and no
-- application around them (bench/drain-ceiling.ts): claim :batch (JobRepo.claim: its transaction commits
-- without waiting for its WAL flush, paused and limited queues left out, the columns the worker reads), then
-- complete them (JobRepo.complete, rows kept: no handler returned a result, so a batch of ids). Each statement
-- commits on its own, as the worker's do. No insert: the backlog is filled and analyzed before the run.
-- One difference: for `\gset` the claimed rows are folded into one array, so Postgres does not send their
-- columns row by row as it does to the worker (the ceiling leaves that output cost out).
WITH ready AS (
  SELECT id FROM (
    SELECT id, queue FROM jobs
    WHERE status IN ('queued', 'retrying') AND run_at <= now()
    ORDER BY priority, run_at, id
    LIMIT :batch
    FOR UPDATE SKIP LOCKED
  ) locked
  WHERE queue <> ALL(ARRAY(SELECT name FROM queues WHERE paused_at IS NOT NULL OR concurrency_limit IS NOT NULL OR rate_max IS NOT NULL))
), claimed AS (
  UPDATE jobs AS j
  SET status = 'running', attempts = j.attempts + 1, attempt_started = false, lease_owner = 'pgbench',
      lease_expires_at = now() + 30000 * interval '1 millisecond',
      started_at = now(), finished_at = NULL, updated_at = now()
  WHERE j.id = ANY(ARRAY(SELECT id FROM ready))
    AND (SELECT set_config('synchronous_commit', 'off', true)) = 'off'
  RETURNING j.id, j.queue, j.kind, j.payload, j.priority, j.attempts, j.max_attempts AS "maxAttempts",
    j.run_at AS "runAt", j.idempotency_key AS "idempotencyKey", j.last_error AS "lastError", j.errors,
    j.created_at AS "createdAt", j.started_at AS "startedAt", j.trace_context AS "traceContext",
    j.unstarted_rescues > 0 AS "recordStartFirst", j.snoozes, j.progress, j.flow_id AS "flowId",
    j.flow_name AS "flowName"
)
SELECT coalesce(array_agg(id ORDER BY priority, "runAt", id), '{}') AS ids
FROM (SELECT c.*, CASE WHEN c."flowId" IS NULL THEN NULL ELSE jobq_job_parents(c.id) END AS parents
      FROM claimed c) s \gset
UPDATE jobs AS j
SET status = 'succeeded', result = NULL, finished_at = now(), updated_at = now(), lease_owner = NULL,
    lease_expires_at = NULL
FROM unnest(:ids::uuid[]) AS x (id)
WHERE j.id = x.id AND j.status = 'running' AND j.lease_owner = 'pgbench'
RETURNING j.id;
