-- Unique jobs over a window, snoozes and progress. Applied once by the migrator inside a transaction; never
-- edited after it lands.

-- `unique_key`: a hash of what the job is compared by, plus '@' and the bucket of its run_at when the
-- uniqueness has a period (see src/queue/Uniqueness.ts). `unique_states`: the bitmask of the states in
-- which it holds its slot (queued 1, running 2, succeeded 4, retrying 8, failed_permanent 16, cancelled 32;
-- always at least queued, running and retrying). Both NULL for a job enqueued without `unique`.
ALTER TABLE jobs ADD COLUMN unique_key text CHECK (length(unique_key) <= 128);
ALTER TABLE jobs ADD COLUMN unique_states smallint CHECK (unique_states BETWEEN 0 AND 63);
ALTER TABLE jobs ADD CONSTRAINT jobs_unique_has_states CHECK ((unique_key IS NULL) = (unique_states IS NULL));

-- Whether a job in `status` holds its unique slot. IMMUTABLE, so that the index predicate below may call it.
CREATE FUNCTION jobq_unique_counts(states smallint, status text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (states & CASE status WHEN 'queued' THEN 1 WHEN 'running' THEN 2 WHEN 'succeeded' THEN 4
                               WHEN 'retrying' THEN 8 WHEN 'failed_permanent' THEN 16 WHEN 'cancelled' THEN 32
                               ELSE 0 END) <> 0
$$;

-- At most one job per unique key among the jobs in their counted states. A job leaving them frees the slot
-- (its entry leaves the index); only a retry can bring one back into them, and it is refused (23505) while
-- another job holds the slot.
CREATE UNIQUE INDEX jobs_unique_key_idx ON jobs (unique_key)
  WHERE unique_key IS NOT NULL AND jobq_unique_counts(unique_states, status);

-- How often the job's handler snoozed: each snooze ends the attempt without spending it.
ALTER TABLE jobs ADD COLUMN snoozes integer NOT NULL DEFAULT 0 CHECK (snoozes >= 0);

-- What the handler last reported (small JSON, bounded by the worker). Not indexed, so that its updates
-- stay HOT.
ALTER TABLE jobs ADD COLUMN progress jsonb;
