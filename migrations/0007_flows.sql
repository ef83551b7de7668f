-- Flows: jobs that wait for other jobs. A flow is a set of jobs with local names and dependencies, inserted
-- at once (src/queue/FlowRepo.ts); a job with unfinished dependencies is `blocked` (never claimed: the claims
-- read queued and retrying jobs only) until the last of them succeeds. docs/architecture.md ("Flows")
-- explains the statements below and why the unblocking is race-free.
-- Applied once by the migrator inside a transaction; never edited after it lands.

CREATE TABLE flows (
  id           uuid        PRIMARY KEY,
  -- what a dependency that ends failed_permanent or cancelled does to its dependents:
  -- `cancel` cancels them (transitively); `wait` leaves them blocked until the dependency is retried
  on_failure   text        NOT NULL DEFAULT 'cancel' CHECK (on_failure IN ('cancel', 'wait')),
  job_count    integer     NOT NULL CHECK (job_count BETWEEN 1 AND 1000),
  cancelled_at timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now()
);

-- A seventh state: waiting for dependencies.
ALTER TABLE jobs DROP CONSTRAINT jobs_status_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_status_check
  CHECK (status IN ('queued', 'running', 'succeeded', 'retrying', 'failed_permanent', 'cancelled', 'blocked'));

-- All three stay null / 0 for a job outside a flow (adding them rewrites no row: constant defaults).
ALTER TABLE jobs ADD COLUMN flow_id uuid REFERENCES flows (id);
ALTER TABLE jobs ADD COLUMN flow_name text CHECK (length(flow_name) BETWEEN 1 AND 128);
-- How many of the job's dependencies have not succeeded yet; the job is `blocked` while it is above 0.
ALTER TABLE jobs ADD COLUMN pending_deps integer NOT NULL DEFAULT 0 CHECK (pending_deps >= 0);
ALTER TABLE jobs ADD CONSTRAINT jobs_flow_whole CHECK ((flow_id IS NULL) = (flow_name IS NULL));

-- A flow's jobs by local name (GET /flows/{id}, cancelling a flow). Partial: jobs outside flows have no entry.
CREATE UNIQUE INDEX jobs_flow_idx ON jobs (flow_id, flow_name) WHERE flow_id IS NOT NULL;

-- The dependencies: `job_id` runs after `depends_on` succeeded. `satisfied` is set once, by the statement
-- that made `depends_on` succeed, so that an edge is counted off its dependent exactly once.
CREATE TABLE job_deps (
  depends_on uuid    NOT NULL,
  job_id     uuid    NOT NULL,
  satisfied  boolean NOT NULL DEFAULT false,
  PRIMARY KEY (depends_on, job_id)
);
-- a job's dependencies (a dependent's `parents`, GET /flows/{id})
CREATE INDEX job_deps_job_idx ON job_deps (job_id);

-- A job with unfinished dependencies is never queued or run, whoever asks (a retry of a cancelled
-- dependent, SQL by hand): such an update fails (23514), and `Queue.retry` puts the job back to `blocked`
-- instead. A CHECK rather than a BEFORE UPDATE trigger: a row trigger, even one whose WHEN is false, makes
-- Postgres lock each row before updating it (an extra WAL record per claimed and per completed job: the
-- drain lost about 15%); the check is one comparison per row.
ALTER TABLE jobs ADD CONSTRAINT jobs_blocked_until_deps
  CHECK (pending_deps = 0 OR status NOT IN ('queued', 'retrying', 'running'));

-- Moves flows on, in the transaction of whatever statement ended flow jobs (a worker's batch completion, a
-- failure, the rescuer, a cancel, the JOB_RETENTION=0 completion, SQL by hand), so no path can forget it:
--
-- 1. A dependency that succeeded satisfies its edges, and each dependent's `pending_deps` is decreased by the
--    edges satisfied, under its row lock, the dependents locked in id order first; the one decrease that
--    reaches 0 turns the job `queued` (and wakes the workers of its queue). Two parents completing in two
--    concurrent transactions: the second waits on the first's row lock, then decreases the committed count
--    (READ COMMITTED re-reads the row it waited for); neither reads the other's status, so neither can miss
--    it. Every transaction locks dependents in one step, in id order: no deadlock between them.
-- 2. A dependency that ended failed_permanent or cancelled, in a flow whose policy is `cancel`: its blocked
--    descendants are cancelled, each with a reason naming the dependency. Under `wait` they stay blocked;
--    a retry of the dependency lets the flow go on.
--
-- Statement-level over the rows the statement changed: one call per statement. A statement without a
-- finished flow job (every claim, renewal and completion outside flows) stops at the first query; the work
-- is done by `jobq_flow_move`, given the ids.
--
-- `jit = off` for that work: the planner cannot know how small the recursive walk of step 2 is, estimated
-- it at millions of rows, and JIT-compiled it on every completion of a flow job (about a second of CPU each,
-- holding the completed rows' locks meanwhile).
CREATE FUNCTION jobq_flow_move(done uuid[], ended uuid[]) RETURNS void
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
  dependents uuid[];
  counts integer[];
  doomed uuid[];
  reasons text[];
  q record;
BEGIN
  -- 1. successes: count satisfied edges per dependent (an edge already satisfied is not counted again)
  IF done IS NOT NULL THEN
    WITH satisfied AS (
      UPDATE job_deps d SET satisfied = true
      WHERE d.depends_on = ANY(done) AND NOT d.satisfied
      RETURNING d.job_id
    )
    SELECT array_agg(job_id ORDER BY job_id), array_agg(n ORDER BY job_id) INTO dependents, counts
    FROM (SELECT job_id, count(*)::integer AS n FROM satisfied GROUP BY job_id) s;
  END IF;

  IF dependents IS NOT NULL THEN
    -- the locks, in id order, before any change (a statement of its own: the UPDATE below then reads the
    -- rows as committed when the locks were granted)
    PERFORM 1 FROM jobs WHERE id = ANY(dependents) ORDER BY id FOR UPDATE;
    FOR q IN
      WITH moved AS (
        UPDATE jobs AS j
        SET pending_deps = greatest(j.pending_deps - x.n, 0),
            status = CASE WHEN j.status = 'blocked' AND j.pending_deps - x.n <= 0 THEN 'queued' ELSE j.status END,
            updated_at = now()
        FROM unnest(dependents, counts) AS x (id, n)
        WHERE j.id = x.id
        RETURNING j.queue, j.run_at, j.status
      )
      SELECT queue, bool_or(run_at <= now()) AS ready_now,
             min(run_at) FILTER (WHERE run_at > now()) AS ready_later
      FROM moved WHERE status = 'queued' GROUP BY queue
    LOOP
      IF q.ready_now THEN
        PERFORM pg_notify('jobq_ready', q.queue);
      END IF;
      IF q.ready_later IS NOT NULL THEN
        PERFORM pg_notify('jobq_ready', q.queue || '@' || (extract(epoch FROM q.ready_later) * 1000)::bigint);
      END IF;
    END LOOP;
  END IF;

  -- 2. failures under `cancel`: every blocked descendant, named after the first failed dependency above it
  IF ended IS NOT NULL THEN
    WITH RECURSIVE down (id, reason) AS (
      SELECT d.job_id, 'dependency "' || c.flow_name || '" (job ' || c.id || ') ended ' || c.status
      FROM jobs c
      JOIN flows f ON f.id = c.flow_id AND f.on_failure = 'cancel'
      JOIN job_deps d ON d.depends_on = c.id
      JOIN jobs b ON b.id = d.job_id AND b.status = 'blocked'
      WHERE c.id = ANY(ended) AND c.status IN ('failed_permanent', 'cancelled')
      UNION
      SELECT d.job_id, down.reason
      FROM down
      JOIN job_deps d ON d.depends_on = down.id
      JOIN jobs b ON b.id = d.job_id AND b.status = 'blocked'
    )
    SELECT array_agg(id ORDER BY id), array_agg(reason ORDER BY id) INTO doomed, reasons
    FROM (SELECT id, min(reason) AS reason FROM down GROUP BY id) s;
  END IF;

  IF doomed IS NOT NULL THEN
    PERFORM 1 FROM jobs WHERE id = ANY(doomed) ORDER BY id FOR UPDATE;
    UPDATE jobs AS j
    SET status = 'cancelled', finished_at = now(), updated_at = now(), last_error = x.reason,
        errors = j.errors || jsonb_build_array(jsonb_build_object(
          'attempt', j.attempts, 'at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
          'error', x.reason, 'retryDelayMs', NULL))
    FROM unnest(doomed, reasons) AS x (id, reason)
    WHERE j.id = x.id AND j.status = 'blocked';
  END IF;
END
$$;

CREATE FUNCTION jobq_flow_advance() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  done uuid[];
  ended uuid[];
BEGIN
  SELECT array_agg(id) FILTER (WHERE status = 'succeeded'),
         array_agg(id) FILTER (WHERE status IN ('failed_permanent', 'cancelled'))
  INTO done, ended
  FROM changed WHERE flow_id IS NOT NULL AND status IN ('succeeded', 'failed_permanent', 'cancelled');
  IF done IS NOT NULL OR ended IS NOT NULL THEN
    PERFORM jobq_flow_move(done, ended);
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER jobs_flow_advance
  AFTER UPDATE ON jobs REFERENCING NEW TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION jobq_flow_advance();

-- A flow job deleted (pruned with its flow): its edges go with it.
CREATE FUNCTION jobq_flow_forget() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM gone WHERE flow_id IS NOT NULL) THEN
    DELETE FROM job_deps d USING gone g WHERE g.flow_id IS NOT NULL AND d.job_id = g.id;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER jobs_flow_forget
  AFTER DELETE ON jobs REFERENCING OLD TABLE AS gone
  FOR EACH STATEMENT EXECUTE FUNCTION jobq_flow_forget();
