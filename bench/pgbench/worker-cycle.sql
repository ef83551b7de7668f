-- One cycle of the queue's hot path with the statements exactly as the worker sends them (JobRepo.claim and
-- JobRepo.complete; claim-complete.sql is an older, simpler rendering kept for comparison with earlier runs):
-- insert :batch jobs; claim :batch (its transaction commits without waiting for its WAL flush, as the
-- worker's claim does: `synchronous_commit` off inside the statement; paused and limited queues left out;
-- the columns the worker reads); complete them, results not kept (no handler returned one), as a batch of
-- ids, answering how many were still held (and which, only when not all). Each statement commits on its own,
-- as the worker's do. The insert lets the database make the ids (`Queue.enqueueMany` sends ids made by the
-- client).
INSERT INTO jobs (queue, kind, payload) SELECT 'default', 'noop', '{}'::jsonb FROM generate_series(1, :batch);
WITH ready AS (
  SELECT id, ctid FROM (
    SELECT id, queue, ctid FROM jobs
    WHERE status IN ('queued', 'retrying') AND run_at <= now()
    ORDER BY priority, run_at, id
    LIMIT (SELECT :batch::int)
    FOR UPDATE SKIP LOCKED
  ) locked
  WHERE queue <> ALL(ARRAY(SELECT name FROM queues WHERE paused_at IS NOT NULL OR concurrency_limit IS NOT NULL OR rate_max IS NOT NULL))
), claimed AS (
  UPDATE jobs AS j
  SET status = 'running', attempts = j.attempts + 1, attempt_started = false, lease_owner = 'pgbench',
      lease_expires_at = now() + 30000 * interval '1 millisecond',
      started_at = now(), finished_at = NULL, updated_at = now()
  WHERE j.ctid = ANY(ARRAY(SELECT ctid FROM ready))
    AND (SELECT set_config('synchronous_commit', 'off', true)) = 'off'
  RETURNING j.id, j.queue, j.kind, j.payload, j.priority, j.attempts, j.max_attempts AS "maxAttempts",
    j.run_at AS "runAt", j.idempotency_key AS "idempotencyKey", j.last_error AS "lastError", j.errors,
    j.created_at AS "createdAt", j.started_at AS "startedAt", j.trace_context AS "traceContext",
    j.unstarted_rescues > 0 AS "recordStartFirst", j.snoozes, j.progress, j.flow_id AS "flowId",
    j.flow_name AS "flowName"
)
SELECT coalesce(array_agg(id ORDER BY priority, "runAt", id), '{}') AS ids
FROM (SELECT c.id, c.queue, c.kind, c.payload, c.priority, c.attempts, c."maxAttempts", c."runAt",
        c."createdAt", c."startedAt", c."traceContext",
        CASE WHEN c."idempotencyKey" IS NULL AND c."lastError" IS NULL AND c.errors = '[]'::jsonb
                  AND NOT c."recordStartFirst" AND c.snoozes = 0 AND c.progress IS NULL AND c."flowId" IS NULL
             THEN NULL
             ELSE jsonb_build_object('idempotencyKey', c."idempotencyKey", 'lastError', c."lastError",
                    'errors', c.errors, 'recordStartFirst', c."recordStartFirst", 'snoozes', c.snoozes,
                    'progress', c.progress, 'flowId', c."flowId", 'flowName', c."flowName",
                    'parents', CASE WHEN c."flowId" IS NULL THEN NULL ELSE jobq_job_parents(c.id) END)
        END AS rare
      FROM claimed c) s \gset
WITH done AS (
  UPDATE jobs AS j
  SET status = 'succeeded', result = NULL, finished_at = now(), updated_at = now(), lease_owner = NULL,
      lease_expires_at = NULL
  FROM unnest(:ids::uuid[]) AS x (id)
  WHERE j.id = x.id AND j.status = 'running' AND j.lease_owner = (SELECT 'pgbench'::text)
  RETURNING j.id
)
SELECT CASE WHEN count(*) = :batch THEN NULL ELSE coalesce(array_agg(id::text), '{}') END AS ids
FROM done;
