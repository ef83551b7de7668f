-- The queue: one table, six states, leases for running jobs.
-- Applied once by the migrator inside a transaction; never edited after it lands.

-- Time-ordered UUIDs (RFC 9562 version 7) so ids sort by creation and index locality is good.
-- PostgreSQL 18 has uuidv7(); this one works from 13 on.
CREATE FUNCTION jobq_uuidv7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
  SELECT encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
              PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
              FROM 1 FOR 6),
      52, 1), 53, 1),
    'hex')::uuid
$$;

CREATE TABLE jobs (
  id                   uuid        PRIMARY KEY DEFAULT jobq_uuidv7(),
  queue                text        NOT NULL DEFAULT 'default' CHECK (length(queue) BETWEEN 1 AND 128),
  kind                 text        NOT NULL CHECK (length(kind) BETWEEN 1 AND 128),
  payload              jsonb       NOT NULL,
  status               text        NOT NULL DEFAULT 'queued'
                       CHECK (status IN ('queued', 'running', 'succeeded', 'retrying', 'failed_permanent', 'cancelled')),
  -- lower runs first, like nice(1) and graphile-worker
  priority             smallint    NOT NULL DEFAULT 0,
  attempts             integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  max_attempts         integer     NOT NULL DEFAULT 5 CHECK (max_attempts BETWEEN 1 AND 1000),
  run_at               timestamptz NOT NULL DEFAULT now(),
  lease_owner          text,
  lease_expires_at     timestamptz,
  cancel_requested_at  timestamptz,
  idempotency_key      text        CHECK (length(idempotency_key) BETWEEN 1 AND 255),
  request_hash         text,
  last_error           text,
  -- [{ "attempt": n, "at": iso, "error": text, "retryDelayMs": n | null }, ...]
  errors               jsonb       NOT NULL DEFAULT '[]'::jsonb,
  result               jsonb,
  -- W3C trace context of the request that enqueued the job ({ "traceparent": ..., "tracestate": ... })
  trace_context        jsonb,
  created_at           timestamptz NOT NULL DEFAULT now(),
  started_at           timestamptz,
  finished_at          timestamptz,
  updated_at           timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT jobs_running_has_lease CHECK (status <> 'running' OR (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL)),
  CONSTRAINT jobs_idempotency_has_hash CHECK (idempotency_key IS NULL OR request_hash IS NOT NULL)
);

-- The claim reads this index in order and stops after n rows.
CREATE INDEX jobs_ready_idx ON jobs (priority, run_at, id) WHERE status IN ('queued', 'retrying');
-- The rescuer finds expired leases without touching finished rows.
CREATE INDEX jobs_lease_expiry_idx ON jobs (lease_expires_at) WHERE status = 'running';
-- An idempotency key names at most one job, across all queues.
CREATE UNIQUE INDEX jobs_idempotency_key_idx ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;
-- No other index, on purpose: a job's claim and its completion each rewrite every index entry of the row
-- (status changes, so the updates cannot be HOT), and each index costs throughput on that hot path.
-- Listing pages through the primary key and filters status / queue / kind on the way (docs/tradeoffs.md).

-- Wake idle workers when jobs arrive, whoever inserts them: payload `queue` for jobs ready now, and
-- `queue@<epoch ms>` for the earliest job that becomes ready later, so a worker can set a timer for it.
-- Postgres folds identical notifications within a transaction.
CREATE FUNCTION jobq_notify_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  q record;
BEGIN
  FOR q IN
    SELECT queue,
           bool_or(run_at <= now()) AS ready_now,
           min(run_at) FILTER (WHERE run_at > now()) AS ready_later
    FROM new_jobs GROUP BY queue
  LOOP
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

CREATE TRIGGER jobs_notify_inserted
  AFTER INSERT ON jobs REFERENCING NEW TABLE AS new_jobs
  FOR EACH STATEMENT EXECUTE FUNCTION jobq_notify_inserted();

-- Tell the worker holding a running job that its cancellation was requested.
CREATE FUNCTION jobq_notify_cancel() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('jobq_cancel', NEW.id::text);
  RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_cancel
  AFTER UPDATE OF cancel_requested_at ON jobs
  FOR EACH ROW
  WHEN (NEW.status = 'running' AND OLD.cancel_requested_at IS NULL AND NEW.cancel_requested_at IS NOT NULL)
  EXECUTE FUNCTION jobq_notify_cancel();
