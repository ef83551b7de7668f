-- One cycle of the minimal SKIP LOCKED queue (bench/pgbench/minimal-schema.sql): insert :batch jobs, then
-- claim :batch and complete them in one transaction.
INSERT INTO minimal_jobs (payload) SELECT '{}'::jsonb FROM generate_series(1, :batch);
BEGIN;
WITH ready AS (
  SELECT id FROM minimal_jobs WHERE status = 'queued' ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED
), claimed AS (
  UPDATE minimal_jobs AS m SET status = 'running' FROM ready WHERE m.id = ready.id RETURNING m.id
)
SELECT coalesce(array_agg(id), '{}') AS ids FROM claimed \gset
UPDATE minimal_jobs SET status = 'done' WHERE id = ANY(:ids::bigint[]) AND status = 'running';
COMMIT;
