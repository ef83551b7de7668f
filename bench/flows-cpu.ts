/**
 * Database CPU per job of the claim + complete loop, on a database migrated without flows (BASE_DB) and one
 * with them (FLOWS_DB), alternating, five rounds: the CPU time of the one backend running the loop
 * (`/proc/<pid>/stat`, user + system, 10 ms ticks; Postgres on this machine). `parents`: the flows side's
 * claim also reads `parents` as the worker's claim does; `delete`: complete as JOB_RETENTION=0 does.
 *
 *   BASE_DB=... FLOWS_DB=... bun bench/flows-cpu.ts parents [delete]
 */

import { readFileSync } from "node:fs"
import { SQL } from "bun"

const [dbA, dbB] = [process.env.BASE_DB ?? "flows_probe_base", process.env.FLOWS_DB ?? "flows_probe"]
const ticks = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return Number(f[11]) + Number(f[12])
}
const withParents = process.argv[2] === "parents"
const deleting = process.argv[3] === "delete"
const loop = (parents: boolean) => `
DO $$
DECLARE ids uuid[]; n integer;
BEGIN
  FOR i IN 1..100 LOOP
    WITH ready AS (SELECT id FROM jobs WHERE status IN ('queued','retrying') AND run_at <= now() ORDER BY priority, run_at, id LIMIT 500 FOR UPDATE SKIP LOCKED),
    claimed AS (UPDATE jobs j SET status='running', attempts=j.attempts+1, attempt_started=false, lease_owner='w', lease_expires_at=now()+interval '1 minute', started_at=now(), finished_at=NULL, updated_at=now() WHERE j.id = ANY(ARRAY(SELECT id FROM ready)) RETURNING j.id${parents ? ", j.flow_id" : ""})
    SELECT array_agg(c.id) INTO ids FROM (SELECT c.id${parents ? ", CASE WHEN c.flow_id IS NULL THEN NULL ELSE (SELECT jsonb_object_agg(p.flow_name, p.result) FROM job_deps d JOIN jobs p ON p.id = d.depends_on WHERE d.job_id = c.id) END AS parents" : ""} FROM claimed c) c;
    ${
      !deleting
        ? `UPDATE jobs AS j SET status='succeeded', result=NULL, finished_at=now(), updated_at=now(), lease_owner=NULL, lease_expires_at=NULL
    FROM unnest(ids) AS x (id) WHERE j.id = x.id AND j.status='running' AND j.lease_owner='w';`
        : !parents
          ? `DELETE FROM jobs AS j USING unnest(ids) AS x (id) WHERE j.id = x.id AND j.status = 'running' AND j.lease_owner = 'w';`
          : `WITH x AS MATERIALIZED (SELECT id, NULL::jsonb AS result FROM unnest(ids) AS x (id)),
      kept AS (UPDATE jobs AS j SET status = 'succeeded', result = x.result, finished_at = now(), updated_at = now(), lease_owner = NULL, lease_expires_at = NULL FROM x WHERE j.id = x.id AND j.status = 'running' AND j.lease_owner = 'w' AND j.flow_id IS NOT NULL RETURNING j.id),
      gone AS (DELETE FROM jobs AS j USING x WHERE j.id = x.id AND j.status = 'running' AND j.lease_owner = 'w' AND j.flow_id IS NULL RETURNING j.id)
      SELECT count(*) INTO n FROM (SELECT id FROM kept UNION ALL SELECT id FROM gone) s;`
    }
  END LOOP;
END $$`
const run = async (db: string) => {
  const sql = new SQL({ url: `postgres://postgres@127.0.0.1:5432/${db}`, max: 1 })
  await sql`TRUNCATE jobs CASCADE`
  await sql`INSERT INTO jobs (queue, kind, payload) SELECT 'default', 'noop', '{}' FROM generate_series(1, 50000)`
  await sql`ANALYZE jobs`
  const [{ pid }] = await sql`SELECT pg_backend_pid() AS pid`
  const before = ticks(pid)
  await sql.unsafe(loop(db === dbB && withParents))
  const after = ticks(pid)
  await sql.close()
  return ((after - before) * 10_000) / 50_000 // us per job (10 ms ticks)
}
const results: Record<string, number[]> = { [dbA]: [], [dbB]: [] }
for (let round = 0; round < 5; round++) {
  for (const db of round % 2 === 0 ? [dbA, dbB] : [dbB, dbA]) results[db]!.push(await run(db))
}
const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]
for (const [db, xs] of Object.entries(results))
  console.log(db, xs.map((x) => x.toFixed(1)).join(" "), "median", median(xs)!.toFixed(1), "us/job")
