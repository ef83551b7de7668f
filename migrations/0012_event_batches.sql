-- Events written per statement, not per row, by the worker's claims and completions (issue #19's budget:
-- a drain followed by one client at >= 90% of the drain with none). Applied once by the migrator inside a
-- transaction; never edited after it lands.
--
-- 0008 writes one `event_log` row per job per event from a row-level trigger (a function call and an insert
-- each, about 10 us a row): a claim of 500 jobs waited for 500 of them, and the drain ran at about half with
-- someone following. Now the statements that move jobs in batches (JobRepo's claim and completion,
-- FlowRepo.completeDeleting) write ONE row per statement while the events gate is open, with the jobs as
-- parallel arrays; the API expands it into one event per job. How a statement does it:
--
--   WITH claimed AS (UPDATE jobs ... RETURNING id, queue, kind, attempts, ...)
--   SELECT ... FROM claimed
--   WHERE (SELECT jobq_events_batch('started', array_agg(id), array_agg(queue), array_agg(kind),
--                                   array_agg(attempts))
--          FROM claimed WHERE (SELECT jobq_events_batch_open())
--          HAVING count(*) > 0 OR current_setting('jobq.events', true) = 'batch') IS NOT FALSE
--
-- The outer WHERE is a one-time filter, evaluated before anything else of the statement: it first asks
-- `jobq_events_batch_open()` (itself a one-time filter: once per statement), which answers whether the gate
-- is open and, if it is, marks the transaction as writing a batch (`jobq.events` = 'batch'). Only then is
-- `claimed` read, which runs the UPDATE: the row triggers below find the mark and skip every row. The
-- aggregate hands the rows to `jobq_events_batch`, which writes the one row and takes the mark off again, so
-- the statement's later triggers (flows) and later statements of the transaction are covered by the row
-- triggers as before. With the gate closed, `jobq_events_batch_open()` takes the gate's shared lock (as the
-- row triggers' WHEN does for the first row of a transaction), nothing is aggregated, and
-- `jobq_events_batch` is not called: what nobody following pays is one function call per statement and
-- the planning of two small subqueries (bench/RESULTS.md, "Event stream budget, second design").

-- A row's events: 1 for a row-trigger event (job_id ... attempt) or a reset; the length of `jobs` for a
-- batch. Readers page and prune by it without reading the arrays.
ALTER TABLE event_log
  ADD COLUMN size integer NOT NULL DEFAULT 1,
  ADD COLUMN jobs uuid[],
  ADD COLUMN queues text[],
  ADD COLUMN kinds text[],
  ADD COLUMN attempts integer[];

-- Whether the events gate is open; if so, the rows this statement changes from now until
-- `jobq_events_batch` are its to record (the row triggers skip them). The session's own setting (the
-- embedded PGlite holds its gate as `jobq.events = 'open'`) is kept to be put back.
CREATE FUNCTION jobq_events_batch_open() RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  setting text := current_setting('jobq.events', true);
BEGIN
  IF setting = 'batch' THEN
    RETURN true;
  END IF;
  IF coalesce(setting, '') = 'open' OR NOT pg_try_advisory_xact_lock_shared(1785684594, 2) THEN
    PERFORM set_config('jobq.events_outside', coalesce(setting, ''), true),
            set_config('jobq.events', 'batch', true);
    RETURN true;
  END IF;
  RETURN false;
END
$$;

-- Writes one row for a statement's events (nothing for no jobs) and ends the batch. Wakes the readers at most
-- once per 50 ms per session, as `jobq_record_event` does (migrations/0008).
CREATE FUNCTION jobq_events_batch(event text, ids uuid[], queues text[], kinds text[], attempts integer[])
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('jobq.events', true) IS DISTINCT FROM 'batch' THEN
    RETURN true;
  END IF;
  PERFORM set_config('jobq.events', current_setting('jobq.events_outside', true), true);
  IF coalesce(cardinality(ids), 0) = 0 THEN
    RETURN true;
  END IF;
  INSERT INTO event_log (type, size, jobs, queues, kinds, attempts)
  VALUES (event, cardinality(ids), ids, queues, kinds, attempts);
  IF coalesce(current_setting('jobq.events_notified', true), '') = ''
     OR current_setting('jobq.events_notified', true)::timestamptz < clock_timestamp() - interval '50 milliseconds' THEN
    PERFORM pg_notify('jobq_events', '');
    PERFORM set_config('jobq.events_notified', clock_timestamp()::text, false);
  END IF;
  RETURN true;
END
$$;

-- 0008's triggers, with one more case in their gate: `batch`, a statement recording its rows itself. The
-- setting is read once (a CASE with an operand evaluates it once), so nobody following pays what they paid.
DROP TRIGGER jobs_record_event_insert ON jobs;
DROP TRIGGER jobs_record_event_update ON jobs;
DROP TRIGGER jobs_record_event_delete ON jobs;

CREATE TRIGGER jobs_record_event_insert
  AFTER INSERT ON jobs
  FOR EACH ROW
  WHEN (CASE current_setting('jobq.events', true)
          WHEN 'open' THEN true
          WHEN 'batch' THEN false
          ELSE NOT pg_try_advisory_xact_lock_shared(1785684594, 2) END)
  EXECUTE FUNCTION jobq_record_event();

CREATE TRIGGER jobs_record_event_update
  AFTER UPDATE OF status, progress ON jobs
  FOR EACH ROW
  WHEN ((OLD.status IS DISTINCT FROM NEW.status OR OLD.progress IS DISTINCT FROM NEW.progress)
        AND CASE current_setting('jobq.events', true)
              WHEN 'open' THEN true
              WHEN 'batch' THEN false
              ELSE NOT pg_try_advisory_xact_lock_shared(1785684594, 2) END)
  EXECUTE FUNCTION jobq_record_event();

CREATE TRIGGER jobs_record_event_delete
  AFTER DELETE ON jobs
  FOR EACH ROW
  WHEN (OLD.status NOT IN ('succeeded', 'failed_permanent', 'cancelled')
        AND CASE current_setting('jobq.events', true)
              WHEN 'open' THEN true
              WHEN 'batch' THEN false
              ELSE NOT pg_try_advisory_xact_lock_shared(1785684594, 2) END)
  EXECUTE FUNCTION jobq_record_event();
