-- Whether the handler of a running job has started, so that the rescuer can tell a job that waited in a
-- dead worker's buffer (its attempt is refunded) from one that was running when its worker died (its
-- attempt counts). Applied once by the migrator inside a transaction; never edited after it lands.

-- The claim sets it false; the worker sets it true with its next lease renewal after the handler started
-- (within WORKER_LEASE_RENEW), or before the handler runs for a job counted in `unstarted_rescues`.
ALTER TABLE jobs ADD COLUMN attempt_started boolean NOT NULL DEFAULT false;

-- How often the rescuer gave this job its attempt back because no start was recorded. A job that kills its
-- worker within one renewal interval of starting would otherwise never spend an attempt: once this is above
-- zero, the worker records the start before the handler runs, and a crash then counts.
ALTER TABLE jobs ADD COLUMN unstarted_rescues integer NOT NULL DEFAULT 0 CHECK (unstarted_rescues >= 0);
