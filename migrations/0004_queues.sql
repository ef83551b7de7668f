-- Queues you can steer: one row per queue with its pause and its limits, the registry of live workers, and
-- the lease that elects one maintainer. Applied once by the migrator; never edited after it lands.
-- docs/architecture.md ("Steering queues") explains how the claim honours these rows.

-- A queue exists once a job was enqueued to it (the insert trigger below registers it) or once an
-- operator touched it (pause, resume and limits upsert it: a queue may be paused before its first job).
-- Nothing but an operator's call writes `paused_*` and the limits: no deploy, migration or start-up does.
CREATE TABLE queues (
  name                   text          PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 128),
  paused_at              timestamptz,
  paused_by              text          CHECK (length(paused_by) BETWEEN 1 AND 200),
  pause_reason           text          CHECK (length(pause_reason) BETWEEN 1 AND 1000),
  -- at most this many of the queue's jobs hold a live lease at once, over every worker
  concurrency_limit      integer       CHECK (concurrency_limit >= 1),
  -- at most rate_max of the queue's jobs start in any window of rate_per_ms
  rate_max               integer       CHECK (rate_max >= 1),
  rate_per_ms            integer       CHECK (rate_per_ms >= 1),
  -- the starts still inside the window, oldest first, run-length encoded: rate_log_n[i] jobs at rate_log_at[i]
  rate_log_at            timestamptz[] NOT NULL DEFAULT '{}',
  rate_log_n             integer[]     NOT NULL DEFAULT '{}',
  -- finished jobs by status, recounted by the elected maintainer (counting them per request would read
  -- every finished row); null until first counted
  count_succeeded        bigint,
  count_failed_permanent bigint,
  count_cancelled        bigint,
  counted_at             timestamptz,
  created_at             timestamptz   NOT NULL DEFAULT now(),
  updated_at             timestamptz   NOT NULL DEFAULT now(),
  CONSTRAINT queues_rate_whole CHECK ((rate_max IS NULL) = (rate_per_ms IS NULL)),
  CONSTRAINT queues_pause_whole CHECK (paused_at IS NOT NULL OR (paused_by IS NULL AND pause_reason IS NULL))
);

-- Queues whose jobs the plain claim must leave alone: paused, or limited (claimed one queue at a time under a
-- lock). Usually empty or a handful of rows, so the claim's look-up of them costs one tiny index scan.
CREATE INDEX queues_steered_idx ON queues (name)
  WHERE paused_at IS NOT NULL OR concurrency_limit IS NOT NULL OR rate_max IS NOT NULL;

-- Ready jobs of one queue in claim order. With a paused or limited queue holding a backlog, the plain claim
-- would read past all of that backlog in jobs_ready_idx (which is ordered across queues) on every call;
-- this index lets a worker claim queue by queue instead, and the limited claim read one queue only.
-- Its cost: one more index entry per enqueue (a claim or a completion moves the row out of its predicate).
-- `priority::integer`, and the queries that read one queue in order ORDER BY it: both indexes give the same
-- order for one queue, and the planner, assuming the queue's jobs spread evenly, preferred jobs_ready_idx
-- with a filter, reading past every other queue's jobs ahead of them (4.7 ms against 0.8 ms for 500 jobs
-- behind a paused backlog of 10,000); only this index gives the integer order.
CREATE INDEX jobs_queue_ready_idx ON jobs (queue, (priority::integer), run_at, id)
  WHERE status IN ('queued', 'retrying');

-- The insert trigger of 0001, now also registering the queues it sees. A registration is an
-- `INSERT ... ON CONFLICT DO NOTHING` per queue; each session remembers the queues it registered (a session
-- setting, rolled back with the transaction that set it), so the usual enqueue into a known queue costs a
-- string search instead (~1 us against ~6 us per statement, measured: docs/tradeoffs.md). The queue never
-- deletes a queue row; one deleted by hand is registered again by the elected maintainer (QueueRepo.registerReady).
CREATE OR REPLACE FUNCTION jobq_notify_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  q record;
  seen text := coalesce(current_setting('jobq.queues_seen', true), '');
BEGIN
  FOR q IN
    SELECT queue,
           bool_or(run_at <= now()) AS ready_now,
           min(run_at) FILTER (WHERE run_at > now()) AS ready_later
    FROM new_jobs GROUP BY queue
  LOOP
    IF strpos(seen, '|' || q.queue || '|') = 0 THEN
      INSERT INTO queues (name) VALUES (q.queue) ON CONFLICT DO NOTHING;
      -- bounded: a session that used very many queues starts its memory over
      seen := CASE WHEN length(seen) > 8000 THEN '' ELSE seen END || '|' || q.queue || '|';
      PERFORM set_config('jobq.queues_seen', seen, false);
    END IF;
    IF q.ready_now THEN
      PERFORM pg_notify('jobq_ready', q.queue);
    END IF;
    IF q.ready_later IS NOT NULL THEN
      PERFORM pg_notify('jobq_ready', q.queue || '@' || (extract(epoch FROM q.ready_later) * 1000)::bigint);
    END IF;
  END LOOP;
  RETURN NULL;
END
$$;

-- Queues that existed before this migration.
INSERT INTO queues (name) SELECT DISTINCT queue FROM jobs ON CONFLICT DO NOTHING;

-- Live worker processes. Each worker writes its row when it starts, again every WORKER_HEARTBEAT, and deletes
-- it when it has stopped; it sets its own `expires_at` (three heartbeats ahead), after which a worker that
-- stopped heartbeating (killed, partitioned) leaves every listing. The elected maintainer deletes expired rows.
CREATE TABLE workers (
  id           text        PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200),
  host         text        NOT NULL,
  pid          integer     NOT NULL,
  -- null: every queue
  queues       text[],
  concurrency  integer     NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL
);

-- One maintainer at a time (lease rescue, pruning, counting, and every future periodic task): a lease row
-- per role. Every worker tries to take or renew it every third of WORKER_LEADER_LEASE; the statement
-- succeeds only for its holder, or for anyone once it expired, so when the holder dies another worker takes
-- over within WORKER_LEADER_LEASE and a third of it.
CREATE TABLE leaders (
  role        text        PRIMARY KEY,
  holder      text        NOT NULL,
  elected_at  timestamptz NOT NULL DEFAULT now(),
  renewed_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL
);

-- The claim for limited queues (a concurrency limit, a rate limit or both), one queue at a time in name
-- order, each under a transaction-scoped advisory lock on the queue: claims of one limited queue are
-- serialized over every worker, so each counts what the ones before it claimed. The lock is taken in one
-- statement and the counting done in the next: a VOLATILE function takes a fresh snapshot for each of its
-- statements, so the count sees every claim that committed before the lock was granted (within one plain
-- statement the snapshot would predate the wait). Unlimited queues never come here and take no lock.
--
-- Concurrency: jobs of the queue that hold a live lease (`running` and `lease_expires_at` in the future;
-- a job whose worker stopped renewing counts no more once its lease expired).
-- Rate: the queue's log of recent starts (`rate_log_*`, at the statement clock read under the lock, so it
-- only grows); at most `rate_max` start in any window of `rate_per_ms`. The log keeps at most 100 entries,
-- merging the two closest in time into the later one when it must (which only ever delays a start, and
-- by as little as it can).
--
-- Returns the claimed jobs, then one row per queue a limit held back (`id` null, `held_back` 'concurrency'
-- or 'rate', and for a rate limit `reopens_at`, when the window has room again).
-- Sets what JobRepo.claim sets; keep the two in step.
CREATE FUNCTION jobq_claim_limited(p_worker text, p_wanted integer, p_lease_ms bigint, p_served text[])
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
      WHERE j.status = 'running' AND j.queue = q.name AND j.lease_expires_at > t;
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

-- Retention per status: the maintainer deletes each finished status's jobs older than its setting, oldest
-- first, in small batches read from this index's old end. Its cost: one more index entry per finished job.
CREATE INDEX jobs_finished_idx ON jobs (status, finished_at) WHERE finished_at IS NOT NULL;
