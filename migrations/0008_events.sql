-- Notifications and events that cost (almost) nothing while nobody waits or follows, and an event log for
-- GET /events. Applied once by the migrator inside a transaction; never edited after it lands.
--
-- The gate. Two advisory locks, (1785684594, 1) for waiters and (1785684594, 2) for followers, are held in
-- exclusive mode by an API process (src/db/Notifications.ts `hold`) on a session of its own while it has
-- waiters or followers. A trigger fires only when its WHEN clause, evaluated in C, finds that gate open: a
-- row's status changed and `pg_try_advisory_xact_lock_shared` cannot take the lock in shared mode (someone
-- holds it, or waits for it, in exclusive mode). While nobody holds or waits, the writing transaction takes
-- the shared lock itself (once per transaction; later rows find it in the backend's local lock table) and
-- no trigger function runs. A holder's lock is granted only once every transaction holding the shared lock
-- (every one that may have skipped) has ended; from the moment it asks, every new transaction finds the gate
-- open. `SET jobq.finished = 'open'` / `SET jobq.events = 'open'` open a gate for one session's own
-- statements (the embedded PGlite, one session, holds its gates so).
--
-- 0005's statement-level triggers read every update's rows through a transition table, claims and lease
-- renewals included; they are replaced by row-level triggers behind the gate (bench/RESULTS.md has the cost
-- of each).

DROP TRIGGER jobs_notify_finished_update ON jobs;
DROP TRIGGER jobs_notify_finished_delete ON jobs;
DROP FUNCTION jobq_notify_finished();

-- Waiters re-read every job they wait for on each notification: the payload is `*`, identical for every
-- row, so Postgres queues one notification per transaction however many jobs it finishes.
CREATE FUNCTION jobq_notify_finished() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('jobq_finished', '*');
  RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_finished_update
  AFTER UPDATE OF status ON jobs
  FOR EACH ROW
  WHEN (NEW.status IN ('succeeded', 'failed_permanent', 'cancelled')
        AND OLD.status IS DISTINCT FROM NEW.status
        AND (current_setting('jobq.finished', true) = 'open'
             OR NOT pg_try_advisory_xact_lock_shared(1785684594, 1)))
  EXECUTE FUNCTION jobq_notify_finished();

-- an unfinished job deleted (JOB_RETENTION=0 deletes a job as it succeeds); pruning finished jobs notifies
-- nobody
CREATE TRIGGER jobs_notify_finished_delete
  AFTER DELETE ON jobs
  FOR EACH ROW
  WHEN (OLD.status NOT IN ('succeeded', 'failed_permanent', 'cancelled')
        AND (current_setting('jobq.finished', true) = 'open'
             OR NOT pg_try_advisory_xact_lock_shared(1785684594, 1)))
  EXECUTE FUNCTION jobq_notify_finished();

-- The event log, written only while the events gate is open. Unlogged: no WAL for it (events live minutes;
-- after a crash it starts empty and every reconnecting client is told to re-list). Read in (tx, id) order,
-- and only below the oldest running transaction (pg_snapshot_xmin): ids come from a sequence when rows are
-- written, not when they commit, so reading by id alone could pass over a row that commits later; every
-- row of a transaction below the horizon is committed (or never will be), so nothing can appear behind a
-- reader's position. A row of type `reset` marks a reopened gate: events may be missing before it.
CREATE UNLOGGED TABLE event_log (
  tx       bigint      NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
  id       bigint      NOT NULL GENERATED ALWAYS AS IDENTITY (CACHE 100),
  at       timestamptz NOT NULL DEFAULT now(),
  type     text        NOT NULL,
  job_id   uuid,
  queue    text,
  kind     text,
  attempt  integer,
  -- progress: the value; retrying, failed: { "error": last_error }
  data     jsonb,
  PRIMARY KEY (tx, id)
);

-- One row per event, inserted by a row-level trigger while the gate is open (about 5-10 us a row:
-- bench/RESULTS.md). Fields are read from NEW/OLD directly: copying the row into a variable copies it whole.
CREATE FUNCTION jobq_record_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    INSERT INTO event_log (type, job_id, queue, kind, attempt, data)
    VALUES (CASE WHEN OLD.status = NEW.status THEN 'progress' WHEN NEW.status = 'running' THEN 'started'
                 WHEN NEW.status = 'queued' THEN 'enqueued' WHEN NEW.status = 'failed_permanent' THEN 'failed'
                 ELSE NEW.status END,
            NEW.id, NEW.queue, NEW.kind, NEW.attempts,
            CASE WHEN OLD.status = NEW.status THEN NEW.progress
                 WHEN NEW.status IN ('retrying', 'failed_permanent') AND NEW.last_error IS NOT NULL
                 THEN jsonb_build_object('error', left(NEW.last_error, 1000)) END);
  ELSIF TG_OP = 'INSERT' THEN
    INSERT INTO event_log (type, job_id, queue, kind, attempt)
    VALUES (CASE WHEN NEW.status = 'queued' THEN 'enqueued' ELSE NEW.status END,
            NEW.id, NEW.queue, NEW.kind, NEW.attempts);
  ELSE
    -- the queue deletes a running job as it succeeds (JOB_RETENTION=0); anything else removed it unrun
    INSERT INTO event_log (type, job_id, queue, kind, attempt)
    VALUES (CASE WHEN OLD.status = 'running' THEN 'succeeded' ELSE 'cancelled' END,
            OLD.id, OLD.queue, OLD.kind, OLD.attempts);
  END IF;
  -- Wake the readers at most once per 50 ms per session: a notifying transaction holds a global lock
  -- through its commit (docs/tradeoffs.md), so notifying every transaction serialized every job-changing
  -- commit while someone followed. Readers also look every 50 ms while they have followers, so an event
  -- a throttled session did not announce waits at most that long. (Identical payloads collapse anyway:
  -- at most one notification per transaction.) A rolled-back transaction rolls the setting back too.
  IF coalesce(current_setting('jobq.events_notified', true), '') = ''
     OR current_setting('jobq.events_notified', true)::timestamptz < clock_timestamp() - interval '50 milliseconds' THEN
    PERFORM pg_notify('jobq_events', '');
    PERFORM set_config('jobq.events_notified', clock_timestamp()::text, false);
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER jobs_record_event_insert
  AFTER INSERT ON jobs
  FOR EACH ROW
  WHEN (current_setting('jobq.events', true) = 'open' OR NOT pg_try_advisory_xact_lock_shared(1785684594, 2))
  EXECUTE FUNCTION jobq_record_event();

CREATE TRIGGER jobs_record_event_update
  AFTER UPDATE OF status, progress ON jobs
  FOR EACH ROW
  WHEN ((OLD.status IS DISTINCT FROM NEW.status OR OLD.progress IS DISTINCT FROM NEW.progress)
        AND (current_setting('jobq.events', true) = 'open'
             OR NOT pg_try_advisory_xact_lock_shared(1785684594, 2)))
  EXECUTE FUNCTION jobq_record_event();

CREATE TRIGGER jobs_record_event_delete
  AFTER DELETE ON jobs
  FOR EACH ROW
  WHEN (OLD.status NOT IN ('succeeded', 'failed_permanent', 'cancelled')
        AND (current_setting('jobq.events', true) = 'open'
             OR NOT pg_try_advisory_xact_lock_shared(1785684594, 2)))
  EXECUTE FUNCTION jobq_record_event();
