-- Bulk operations (POST /bulk-operations): an action over every job a filter matches, run by the API on the
-- server in batches (JobAdmin's bulk batch), so closing the browser does not stop it. A row holds where the
-- next batch starts (`cursor`) and the counts so far, which is the progress a viewer reads; `owner` is the
-- API process running it and `heartbeat_at` its last sign of life: another API process takes over an
-- operation whose heartbeat is stale (its process died), from the recorded cursor.
-- Applied once by the migrator inside a transaction; never edited after it lands.

CREATE TABLE bulk_operations (
  id uuid PRIMARY KEY,
  action text NOT NULL CHECK (action IN ('retry', 'cancel', 'delete')),
  filter jsonb NOT NULL,
  status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'cancelled', 'failed')),
  cursor uuid,
  matched bigint NOT NULL DEFAULT 0,
  acted bigint NOT NULL DEFAULT 0,
  batches integer NOT NULL DEFAULT 0,
  error text,
  owner text,
  heartbeat_at timestamptz NOT NULL DEFAULT now(),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);

-- the running ones, for the take-over of a dead process's operations and the bound on how many run at once
CREATE INDEX bulk_operations_running_idx ON bulk_operations (heartbeat_at) WHERE status = 'running';
