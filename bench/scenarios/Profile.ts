/**
 * Where the time goes: the claim's plan with a 20,000-job backlog (EXPLAIN (ANALYZE, BUFFERS), the
 * statement our worker sends at concurrency 32), the cost of one commit on this machine (pgbench
 * `SELECT 1` vs a one-row insert at 1 client: the difference is mostly the WAL flush), and whether
 * pg_stat_statements is loaded.
 */
import * as Backlog from "../Backlog.ts"
import * as BenchDatabase from "../BenchDatabase.ts"
import { decimal, integer } from "../Markdown.ts"
import type { Context, Section } from "../Scenario.ts"
import { logDirectory } from "../WorkerProcess.ts"
import { findPgbench, pgbench } from "./Pgbench.ts"

const claim = `
  WITH ready AS (
    SELECT id FROM jobs
    WHERE status IN ('queued', 'retrying') AND run_at <= now()
    ORDER BY priority, run_at, id
    LIMIT 32
    FOR UPDATE SKIP LOCKED)
  UPDATE jobs AS j
  SET status = 'running', attempts = j.attempts + 1, lease_owner = 'profile',
      lease_expires_at = now() + interval '30 seconds', started_at = now(), finished_at = NULL, updated_at = now()
  FROM ready WHERE j.id = ready.id
  RETURNING j.*`

export const run = async (context: Context): Promise<Section> => {
  const parts: Array<string> = []
  await BenchDatabase.using("profile", async (db) => {
    const [{ libs }] = await db.sql`SELECT current_setting('shared_preload_libraries') AS libs`
    parts.push(
      String(libs).includes("pg_stat_statements")
        ? "pg_stat_statements is loaded."
        : "pg_stat_statements is available but not in `shared_preload_libraries` on this shared server (loading it needs a restart, which would disturb the other engineers' test runs), so the statement profile below comes from EXPLAIN and pgbench instead."
    )
    await Backlog.fill(db.sql, 20_000)
    await Backlog.analyze(db.sql)
    const plan: Array<{ "QUERY PLAN": string }> = await db.sql.unsafe(
      `EXPLAIN (ANALYZE, BUFFERS, TIMING) ${claim}`
    )
    parts.push(
      "",
      "EXPLAIN (ANALYZE, BUFFERS) of the claim (LIMIT 32, 20,000 queued, analyzed):",
      "",
      "```",
      ...plan.map((row) => row["QUERY PLAN"]),
      "```"
    )
    const found = await findPgbench()
    if (found !== undefined) {
      const dir = logDirectory
      await Bun.write(`${dir}/select1.sql`, "SELECT 1;\n")
      await Bun.write(
        `${dir}/insert1.sql`,
        "INSERT INTO jobs (queue, kind, payload) VALUES ('default', 'noop', '{}');\n"
      )
      const seconds = context.quick ? 2 : 4
      const select = await pgbench(found.path, db.url, `${dir}/select1.sql`, { clients: 1, seconds }).catch(
        () => undefined
      )
      const insert = await pgbench(found.path, db.url, `${dir}/insert1.sql`, { clients: 1, seconds }).catch(
        () => undefined
      )
      if (select !== undefined && insert !== undefined) {
        parts.push(
          "",
          `One client, ${seconds} s each: \`SELECT 1\` ${integer(select.tps)}/s (${decimal(select.latencyMs, 3)} ms a round trip); a one-row insert into jobs, committed, ${integer(insert.tps)}/s (${decimal(insert.latencyMs, 3)} ms). Every commit waits for its WAL flush (synchronous_commit = on): a worker that claims and completes one job at a time pays two of those per job, which is why concurrency 1 is bounded near the pgbench single-job figure, and why batching claims and completions is the only road to the peers' figures.`
        )
      }
    }
  })
  return { title: "Profile: where the time goes", markdown: parts.join("\n") }
}
