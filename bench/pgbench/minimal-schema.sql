-- The minimal SKIP LOCKED queue issue #21 compares our hot path with: a bigint key, a status, a jsonb
-- payload and one partial index. Not our schema: the physical reference for bench/hotpath.ts.
CREATE TABLE minimal_jobs (
  id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  status  text   NOT NULL DEFAULT 'queued',
  payload jsonb  NOT NULL
);
CREATE INDEX minimal_jobs_ready_idx ON minimal_jobs (id) WHERE status = 'queued';
