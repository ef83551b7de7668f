-- Tell waiting API processes (GET /jobs/{id}/wait, POST /jobs?wait=) that jobs finished: at most one
-- notification on `jobq_finished` per statement that ended jobs, whichever statement it was (a worker's
-- batch completion, a failure, a cancel, the rescuer, another service's SQL). A notification per job would
-- make every finishing transaction queue a notification per row; one per statement keeps it to one.
-- The payload is the finished ids, comma-separated, when they fit in a notification (Postgres refuses
-- payloads of 8000 bytes or more: about 200 ids), else `*`: every waiter then reads its job again.
-- Applied once by the migrator inside a transaction; never edited after it lands.

CREATE FUNCTION jobq_notify_finished() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  ids text;
BEGIN
  IF TG_OP = 'UPDATE' THEN
    -- rows that are terminal after the update (the queue's own statements only ever make them so)
    SELECT string_agg(id::text, ',') INTO ids
    FROM changed WHERE status IN ('succeeded', 'failed_permanent', 'cancelled');
  ELSE
    -- an unfinished job deleted (JOB_RETENTION=0 deletes a job as it succeeds); pruning finished jobs
    -- notifies nobody
    SELECT string_agg(id::text, ',') INTO ids
    FROM changed WHERE status NOT IN ('succeeded', 'failed_permanent', 'cancelled');
  END IF;
  IF ids IS NOT NULL THEN
    PERFORM pg_notify('jobq_finished', CASE WHEN octet_length(ids) < 8000 THEN ids ELSE '*' END);
  END IF;
  RETURN NULL;
END
$$;

-- Statement-level, with the rows as a transition table: one call per statement, not one per row.
CREATE TRIGGER jobs_notify_finished_update
  AFTER UPDATE ON jobs REFERENCING NEW TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION jobq_notify_finished();

CREATE TRIGGER jobs_notify_finished_delete
  AFTER DELETE ON jobs REFERENCING OLD TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION jobq_notify_finished();
