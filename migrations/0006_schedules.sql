-- Cron schedules and the record of every slot they handled. Applied once by the migrator inside a
-- transaction; never edited after it lands. docs/schedules.md explains the semantics (slot, catch-up,
-- overlap, zones, DST, deploys); src/queue/ScheduleRepo.ts holds every statement on these tables.

-- One row per schedule. Definitions come from code (upserted by every worker at start, `source` 'code') or
-- from the API (`source` 'api'). Nothing but an operator's pause/resume writes `paused_*`: no deploy does.
CREATE TABLE schedules (
  name          text        PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
  expression    text        NOT NULL CHECK (length(expression) BETWEEN 1 AND 200),
  time_zone     text        NOT NULL DEFAULT 'UTC' CHECK (length(time_zone) BETWEEN 1 AND 64),
  kind          text        NOT NULL CHECK (length(kind) BETWEEN 1 AND 128),
  payload       jsonb       NOT NULL,
  queue         text        NOT NULL DEFAULT 'default' CHECK (length(queue) BETWEEN 1 AND 128),
  priority      smallint    NOT NULL DEFAULT 0,
  max_attempts  integer     NOT NULL DEFAULT 5 CHECK (max_attempts BETWEEN 1 AND 1000),
  catch_up      text        NOT NULL DEFAULT 'latest' CHECK (catch_up IN ('none', 'latest', 'all')),
  -- how far back missed slots are considered at all: at most 7 days (schedule_fires keeps 8)
  backfill_ms   bigint      NOT NULL DEFAULT 3600000 CHECK (backfill_ms BETWEEN 0 AND 604800000),
  overlap       text        NOT NULL DEFAULT 'allow' CHECK (overlap IN ('allow', 'skip')),
  source        text        NOT NULL CHECK (source IN ('code', 'api')),
  paused_at     timestamptz,
  paused_by     text        CHECK (length(paused_by) BETWEEN 1 AND 200),
  pause_reason  text        CHECK (length(pause_reason) BETWEEN 1 AND 1000),
  -- the latest slot handled (fired or skipped): only ever moves forward; the tick looks at later slots only
  cursor_at     timestamptz NOT NULL,
  -- the first slot after cursor_at, so the tick finds due schedules by an index scan
  next_at       timestamptz,
  -- the job of the latest run (a slot's or a trigger's), for overlap 'skip' and the listing
  last_job_id   uuid,
  last_slot     timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT schedules_pause_whole CHECK (paused_at IS NOT NULL OR (paused_by IS NULL AND pause_reason IS NULL))
);

CREATE INDEX schedules_due_idx ON schedules (next_at) WHERE paused_at IS NULL;

-- One row per (schedule, slot) ever handled: the key that makes a slot fire at most once, whoever ticks and
-- however many tick at once. The job of an enqueued slot is inserted in the same statement as its row, only
-- when the row was new. Not tied to `jobs`: pruning jobs frees no slot. The elected maintainer deletes rows
-- whose slot is more than 8 days old, one day beyond the widest backfill window, so no tick can look at
-- their slots again.
CREATE TABLE schedule_fires (
  schedule  text        NOT NULL REFERENCES schedules (name) ON DELETE CASCADE,
  slot      timestamptz NOT NULL,
  outcome   text        NOT NULL CHECK (outcome IN ('enqueued', 'skipped_overlap')),
  job_id    uuid,
  fired_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (schedule, slot),
  CONSTRAINT schedule_fires_job CHECK ((outcome = 'enqueued') = (job_id IS NOT NULL))
);

CREATE INDEX schedule_fires_slot_idx ON schedule_fires (slot);
