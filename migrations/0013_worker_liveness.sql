-- Liveness per worker (issue #21): a running job claimed by a current worker holds no lease of its own; it
-- lives as long as its worker's row in `workers` does. The worker's heartbeat is the only periodic write, so
-- holding 1,000 sleeping jobs costs a few row updates a minute per worker instead of one per job every
-- half lease. docs/architecture.md ("Leases and rescue") explains the whole scheme. Applied once by the
-- migrator inside a transaction; never edited after it lands.

-- The worker's lease over every job it holds: each heartbeat sets it WORKER_LEASE ahead. `live_since` is when
-- the worker's current unbroken lease began: a heartbeat that finds the lease expired (the worker stalled or
-- lost its database for longer than the lease), or a process's first heartbeat, starts a new one, and the jobs
-- claimed before it are no longer held by the row (the rescuer takes them back). Null on rows written by
-- workers from before this migration, which hold per-job leases only.
ALTER TABLE workers ADD COLUMN lease_expires_at timestamptz;
ALTER TABLE workers ADD COLUMN live_since timestamptz;

-- A running job has an owner always, and either its own lease (`lease_expires_at`: claims by workers from
-- before this migration, and callers of the repository that pass a lease) or none (null: its owner's row
-- holds it). The constraint of 0001 required both. Added NOT VALID: every existing row met the stricter
-- one, and validating would read the whole table under this migration's lock.
ALTER TABLE jobs DROP CONSTRAINT jobs_running_has_lease;
ALTER TABLE jobs ADD CONSTRAINT jobs_running_has_owner CHECK (status <> 'running' OR lease_owner IS NOT NULL) NOT VALID;

-- The claim for limited queues of 0004, unchanged but for the count of live jobs: a job counts while its own
-- lease holds, or, when it has none, while its owner's row holds it (the row's lease has not run out and began
-- no later than the job's claim). `t + NULL * interval` leaves a claim with no lease (p_lease_ms null) without
-- one. Sets what JobRepo.claim sets; keep the two in step.
CREATE OR REPLACE FUNCTION jobq_claim_limited(p_worker text, p_wanted integer, p_lease_ms bigint, p_served text[])
RETURNS TABLE (
  id uuid, queue text, kind text, payload jsonb, priority smallint, attempts integer, max_attempts integer,
  run_at timestamptz, idempotency_key text, last_error text, errors jsonb, created_at timestamptz,
  started_at timestamptz, trace_context jsonb, record_start_first boolean, snoozes integer, progress jsonb,
  held_back text, reopens_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
  q record;
  s record;
  t timestamptz;
  room integer;
  remaining integer := p_wanted;
  live integer;
  used integer;
  oldest timestamptz;
  got integer;
  binding text;
  ats timestamptz[];
  ns integer[];
  best integer;
  probe uuid;
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  FOR q IN
    SELECT name FROM queues
    WHERE (concurrency_limit IS NOT NULL OR rate_max IS NOT NULL) AND paused_at IS NULL
      AND (p_served IS NULL OR name = ANY(p_served))
    ORDER BY name
  LOOP
    EXIT WHEN remaining <= 0;
    -- nothing ready: no need to wait behind other claimers for the lock (ordered, to read this queue's index)
    probe := NULL;
    SELECT j.id INTO probe FROM jobs j
    WHERE j.queue = q.name AND j.status IN ('queued', 'retrying') AND j.run_at <= now()
    ORDER BY j.priority::integer, j.run_at, j.id LIMIT 1;
    CONTINUE WHEN probe IS NULL;
    PERFORM pg_advisory_xact_lock(1785684593, hashtext(q.name));
    SELECT * INTO s FROM queues WHERE name = q.name;
    CONTINUE WHEN s.paused_at IS NOT NULL OR (s.concurrency_limit IS NULL AND s.rate_max IS NULL);
    t := clock_timestamp();
    room := remaining;
    binding := NULL;
    oldest := NULL;
    IF s.concurrency_limit IS NOT NULL THEN
      SELECT count(*) INTO live FROM jobs j
      WHERE j.status = 'running' AND j.queue = q.name
        AND CASE WHEN j.lease_expires_at IS NOT NULL THEN j.lease_expires_at > t
                 ELSE EXISTS (SELECT 1 FROM workers w
                              WHERE w.id = j.lease_owner AND w.lease_expires_at > t
                                AND w.live_since <= j.started_at) END;
      IF s.concurrency_limit - live < room THEN
        room := greatest(s.concurrency_limit - live, 0);
        binding := 'concurrency';
      END IF;
    END IF;
    IF s.rate_max IS NOT NULL THEN
      SELECT coalesce(sum(l.n), 0), min(l.at) INTO used, oldest
      FROM unnest(s.rate_log_at, s.rate_log_n) AS l (at, n)
      WHERE l.at > t - s.rate_per_ms * interval '1 millisecond';
      IF s.rate_max - used < room THEN
        room := greatest(s.rate_max - used, 0);
        binding := 'rate';
      END IF;
    END IF;
    got := 0;
    IF room > 0 THEN
      RETURN QUERY
        WITH ready AS (
          SELECT j.id FROM jobs j
          WHERE j.queue = q.name AND j.status IN ('queued', 'retrying') AND j.run_at <= now()
          ORDER BY j.priority::integer, j.run_at, j.id
          LIMIT room
          FOR UPDATE SKIP LOCKED
        ), claimed AS (
          UPDATE jobs AS j
          SET status = 'running', attempts = j.attempts + 1, attempt_started = false, lease_owner = p_worker,
              lease_expires_at = t + p_lease_ms * interval '1 millisecond',
              started_at = t, finished_at = NULL, updated_at = t
          WHERE j.id = ANY(ARRAY(SELECT ready.id FROM ready))
          RETURNING j.id, j.queue, j.kind, j.payload, j.priority, j.attempts, j.max_attempts, j.run_at,
                    j.idempotency_key, j.last_error, j.errors, j.created_at, j.started_at, j.trace_context,
                    j.unstarted_rescues > 0, j.snoozes, j.progress
        )
        SELECT c.*, NULL::text, NULL::timestamptz FROM claimed c ORDER BY c.priority, c.run_at, c.id;
      GET DIAGNOSTICS got = ROW_COUNT;
    END IF;
    IF got > 0 AND s.rate_max IS NOT NULL THEN
      SELECT coalesce(array_agg(l.at ORDER BY l.ord), '{}'), coalesce(array_agg(l.n ORDER BY l.ord), '{}')
      INTO ats, ns
      FROM unnest(s.rate_log_at, s.rate_log_n) WITH ORDINALITY AS l (at, n, ord)
      WHERE l.at > t - s.rate_per_ms * interval '1 millisecond';
      ats := ats || t;
      ns := ns || got;
      -- over 100 entries: merge the two closest in time into the later one (the least delay it can cost)
      WHILE cardinality(ats) > 100 LOOP
        best := 1;
        FOR i IN 2 .. cardinality(ats) - 1 LOOP
          IF ats[i + 1] - ats[i] < ats[best + 1] - ats[best] THEN
            best := i;
          END IF;
        END LOOP;
        ns := ns[1:best - 1] || (ns[best] + ns[best + 1]) || ns[best + 2:];
        ats := ats[1:best - 1] || ats[best + 1:];
      END LOOP;
      UPDATE queues SET rate_log_at = ats, rate_log_n = ns WHERE name = q.name;
      oldest := coalesce(oldest, t);
    END IF;
    IF binding IS NOT NULL AND got = room THEN
      RETURN QUERY SELECT NULL::uuid, q.name, NULL::text, NULL::jsonb, NULL::smallint, NULL::integer,
        NULL::integer, NULL::timestamptz, NULL::text, NULL::text, NULL::jsonb, NULL::timestamptz,
        NULL::timestamptz, NULL::jsonb, NULL::boolean, NULL::integer, NULL::jsonb, binding,
        CASE WHEN binding = 'rate' THEN oldest + s.rate_per_ms * interval '1 millisecond' END;
    END IF;
    remaining := remaining - got;
  END LOOP;
END
$$;
