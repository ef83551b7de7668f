/**
 * A test-side record of job transitions that the queue itself leaves no trace of: each claim (a job turning
 * `running`, with the claiming worker) and each release (a running job given back to the queue without
 * spending its attempt, with the worker that held it). Rows come from a trigger on `jobs`, so they commit
 * or vanish with the transition itself, whatever the workers log. Only the events asked for get a trigger:
 * a claim log costs an insert per claim.
 */
export type JobEvent = "claimed" | "released"

const conditions: Record<JobEvent, string> = {
  claimed: "NEW.status = 'running' AND OLD.status <> 'running'",
  // a release gives the attempt back; a rescue, a failure or a completion never lowers `attempts`
  released: "OLD.status = 'running' AND NEW.status <> 'running' AND NEW.attempts < OLD.attempts"
}

/** The statements that create `job_events` and the triggers for `events`, to run one by one. */
export const jobEventsDdl = (events: ReadonlyArray<JobEvent>): ReadonlyArray<string> => [
  `CREATE TABLE job_events (
     job_id uuid NOT NULL, event text NOT NULL, worker text, at timestamptz NOT NULL DEFAULT clock_timestamp())`,
  "CREATE INDEX ON job_events (job_id)",
  `CREATE FUNCTION log_job_event() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     IF NEW.status = 'running' THEN
       INSERT INTO job_events (job_id, event, worker) VALUES (NEW.id, 'claimed', NEW.lease_owner);
     ELSE
       INSERT INTO job_events (job_id, event, worker) VALUES (NEW.id, 'released', OLD.lease_owner);
     END IF;
     RETURN NULL;
   END $$`,
  ...events.map(
    (event) =>
      `CREATE TRIGGER job_${event} AFTER UPDATE ON jobs FOR EACH ROW WHEN (${conditions[event]})
       EXECUTE FUNCTION log_job_event()`
  )
]
