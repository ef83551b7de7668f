-- The completion of `JOB_RETENTION=0` as FlowRepo.completeDeleting sends it for a batch of ids (no handler
-- returned a result, nobody follows events): flow jobs kept, the rest deleted. bench/drain-ceiling.ts runs it
-- after the claim of worker-cycle.sql (the ids its `\gset` sets).
WITH x AS MATERIALIZED (
  SELECT id, NULL::jsonb AS result FROM unnest(:ids::uuid[]) AS x (id)
), kept AS (
  UPDATE jobs AS j
  SET status = 'succeeded', result = x.result, finished_at = now(), updated_at = now(),
      lease_owner = NULL, lease_expires_at = NULL
  FROM x
  WHERE j.id = x.id AND j.status = 'running' AND j.lease_owner = (SELECT 'pgbench'::text) AND j.flow_id IS NOT NULL
  RETURNING j.id, j.queue, j.kind, j.attempts
), gone AS (
  DELETE FROM jobs AS j USING x
  WHERE j.id = x.id AND j.status = 'running' AND j.lease_owner = (SELECT 'pgbench'::text) AND j.flow_id IS NULL
  RETURNING j.id, j.queue, j.kind, j.attempts
), done AS (
  SELECT * FROM kept UNION ALL SELECT * FROM gone
)
SELECT CASE WHEN count(*) = :batch THEN NULL ELSE coalesce(array_agg(id::text), '{}') END AS ids
FROM done WHERE true;
