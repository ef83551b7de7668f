-- One cycle of the queue's hot path, as our worker runs it: insert :batch jobs, claim :batch with the
-- claim statement (SKIP LOCKED, lease), complete them with the guarded completion. Each statement
-- commits on its own, as the worker's do.
INSERT INTO jobs (queue, kind, payload) SELECT 'default', 'noop', '{}'::jsonb FROM generate_series(1, :batch);
WITH ready AS (
  SELECT id FROM jobs
  WHERE status IN ('queued', 'retrying') AND run_at <= now()
  ORDER BY priority, run_at, id
  LIMIT :batch
  FOR UPDATE SKIP LOCKED
), claimed AS (
  UPDATE jobs AS j
  SET status = 'running', attempts = j.attempts + 1, lease_owner = 'pgbench',
      lease_expires_at = now() + interval '30 seconds', started_at = now(), finished_at = NULL, updated_at = now()
  FROM ready WHERE j.id = ready.id
  RETURNING j.id
)
SELECT coalesce(array_agg(id), '{}') AS ids FROM claimed \gset
UPDATE jobs
SET status = 'succeeded', result = 'null'::jsonb, finished_at = now(), updated_at = now(),
    lease_owner = NULL, lease_expires_at = NULL
WHERE id = ANY(:ids::uuid[]) AND status = 'running' AND lease_owner = 'pgbench';
