-- A flow job deleted while a job of its flow still waits for it (DELETE /jobs/{id}, a bulk delete, SQL by
-- hand): the waiting jobs could never run, and their flow stayed `active` for ever. Now the blocked jobs
-- that waited on a deleted job, and the blocked jobs that waited on those (transitively), are cancelled in
-- the deleting statement's transaction, whatever the flow's failure policy (a deleted dependency cannot be
-- retried, so `wait` would wait for ever). A succeeded dependency deleted changes nothing for its
-- dependents (their edge was satisfied). The edges from the deleted job are kept: `FlowRepo.retryBlocked`
-- reads them to refuse a retry that would wait for a job that no longer exists.
-- Applied once by the migrator inside a transaction; never edited after it lands.

CREATE OR REPLACE FUNCTION jobq_flow_forget() RETURNS trigger
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
  doomed uuid[];
BEGIN
  IF NOT EXISTS (SELECT 1 FROM gone WHERE flow_id IS NOT NULL) THEN
    RETURN NULL;
  END IF;
  DELETE FROM job_deps d USING gone g WHERE g.flow_id IS NOT NULL AND d.job_id = g.id;

  -- the blocked jobs that can no longer run: a walk over job ids alone (each visited once: linear in the
  -- edges it crosses, however many jobs were deleted)
  WITH RECURSIVE down (id) AS (
    SELECT d.job_id
    FROM gone g
    JOIN job_deps d ON d.depends_on = g.id AND NOT d.satisfied
    JOIN jobs b ON b.id = d.job_id AND b.status = 'blocked'
    WHERE g.flow_id IS NOT NULL
    UNION
    SELECT d.job_id
    FROM down
    JOIN job_deps d ON d.depends_on = down.id
    JOIN jobs b ON b.id = d.job_id AND b.status = 'blocked'
  )
  SELECT array_agg(id ORDER BY id) INTO doomed FROM down;

  IF doomed IS NOT NULL THEN
    -- locked in id order, as every statement that moves flows locks blocked jobs
    PERFORM 1 FROM jobs WHERE id = ANY(doomed) ORDER BY id FOR UPDATE;
    UPDATE jobs AS j
    SET status = 'cancelled', finished_at = now(), updated_at = now(), last_error = x.reason,
        errors = j.errors || jsonb_build_array(jsonb_build_object(
          'attempt', j.attempts, 'at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
          'error', x.reason, 'retryDelayMs', NULL))
    FROM (
      SELECT t.id, coalesce(
        (SELECT 'dependency "' || g.flow_name || '" (job ' || g.id || ') was deleted'
         FROM job_deps d JOIN gone g ON g.id = d.depends_on
         WHERE d.job_id = t.id ORDER BY g.id LIMIT 1),
        'a dependency further up its flow was deleted') AS reason
      FROM unnest(doomed) AS t (id)
    ) AS x
    WHERE j.id = x.id AND j.status = 'blocked';
  END IF;
  RETURN NULL;
END
$$;
