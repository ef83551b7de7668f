/**
 * WAL written by one lease-renewal round of 250 running jobs, per statement (EXPLAIN (ANALYZE, WAL)), which
 * other engineers' load on the shared server cannot distort (pg_stat_wal is cluster-wide): main's renewal,
 * which extends every lease every round, against the current one when the leases are due and when they are
 * only looked at, and the per-worker heartbeat that replaced per-job leases (issue #21). The statements are
 * copies of JobRepo.renewLeases' and WorkerRepo.beat's text. Run: `bun bench/renewal-wal.ts`.
 */
import * as BenchDatabase from "./BenchDatabase.ts"

await BenchDatabase.using("walprobe", async (db) => {
  await db.sql.unsafe(`INSERT INTO jobs (queue, kind, payload, status, attempts, started_at, lease_owner, lease_expires_at, attempt_started)
    SELECT 'default', 'sleep', '{"ms":1}'::jsonb, 'running', 1, now(), 'w', now() + interval '30 seconds', true FROM generate_series(1, 250)`)
  await db.sql`ANALYZE jobs`
  const ids = (await db.sql`SELECT array_agg(id)::text AS ids FROM jobs`)[0].ids
  const explain = async (label: string, q: string) => {
    const out: number[] = []
    for (let i = 0; i < 5; i++) {
      const r = await db.sql.unsafe(`EXPLAIN (ANALYZE, WAL, FORMAT JSON) ${q}`, [ids])
      const plan = r[0]["QUERY PLAN"][0].Plan
      out.push(plan["WAL Bytes"] ?? 0)
    }
    console.log(label, "WAL bytes per 250-job round:", out.join(", "))
  }
  const oldQ = `UPDATE jobs AS j SET lease_expires_at = now() + 30000 * interval '1 millisecond', attempt_started = j.attempt_started OR x.started
    FROM unnest($1::uuid[], array_fill(true, ARRAY[250])) AS x (id, started) WHERE j.id = x.id AND j.status = 'running' AND j.lease_owner = 'w'
    RETURNING j.id, j.cancel_requested_at IS NOT NULL`
  const newQ = (
    due: boolean
  ) => `WITH x AS (SELECT * FROM unnest($1::uuid[], array_fill(true, ARRAY[250]), array_fill(${due}, ARRAY[250])) AS x (id, started, due)),
    locked AS (SELECT j.id, x.started, x.due FROM jobs AS j JOIN x ON j.id = x.id WHERE j.status = 'running' AND j.lease_owner = 'w' AND (x.due OR (x.started AND NOT j.attempt_started)) FOR UPDATE OF j SKIP LOCKED),
    written AS (UPDATE jobs AS j SET lease_expires_at = CASE WHEN l.due THEN now() + 30000 * interval '1 millisecond' ELSE j.lease_expires_at END, attempt_started = j.attempt_started OR l.started FROM locked AS l WHERE j.id = l.id RETURNING j.id, j.cancel_requested_at IS NOT NULL AS c, l.due AS renewed)
    SELECT id, c, renewed FROM written UNION ALL SELECT id, cancel_requested_at IS NOT NULL, false FROM jobs WHERE id = ANY($1::uuid[]) AND status = 'running' AND lease_owner = 'w' AND id NOT IN (SELECT id FROM written)`
  await explain("main (every round writes every lease)", oldQ)
  await explain("new, lease due", newQ(true))
  await explain("new, look only (not due)", newQ(false))
  // liveness per worker (migration 0013): the heartbeat, a copy of WorkerRepo.beat's text, is the one write
  // per worker however many jobs it holds ($1 is unused: the helper always passes the ids)
  await db.sql.unsafe(`INSERT INTO workers (id, host, pid, concurrency, expires_at, lease_expires_at, live_since)
    VALUES ('w', 'h', 1, 250, now() + interval '15 seconds', now() + interval '30 seconds', now())`)
  const beat = `INSERT INTO workers AS w (id, host, pid, queues, concurrency, expires_at, lease_expires_at, live_since)
    VALUES ('w', 'h', 1, NULL, 250, now() + 15000 * interval '1 millisecond', now() + 30000 * interval '1 millisecond', now())
    ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, queues = EXCLUDED.queues, concurrency = EXCLUDED.concurrency,
      heartbeat_at = now(), expires_at = EXCLUDED.expires_at, lease_expires_at = EXCLUDED.lease_expires_at,
      live_since = CASE WHEN NOT false AND w.lease_expires_at > now() THEN w.live_since ELSE now() END,
      started_at = CASE WHEN w.pid = EXCLUDED.pid AND w.host = EXCLUDED.host THEN w.started_at ELSE now() END
    RETURNING w.live_since < now() AS continued, cardinality($1::uuid[])`
  await explain("per worker: one heartbeat (whatever the jobs held)", beat)
})
