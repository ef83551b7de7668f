/**
 * `bun run bench/events-cost-pgbench.ts`: what the finished-job notification and the event log
 * (migrations/0005, migrations/0008) cost the database alone. pgbench runs bench/pgbench/claim-complete.sql
 * (insert a batch, claim it, complete it; 8 clients, 5 s) on one database switched between:
 *
 * - `0005`: 0005's statement-level triggers with their transition tables (0008's dropped), as before 0008;
 * - `gated`: 0008's row-level triggers, nobody waiting or following (the gates closed);
 * - `waiting`: 0008, a session holding the waiters' gate (notifications on, events off);
 * - `following`: 0008, a session holding both gates (notifications and the event log on);
 * - `none`: no notification or event trigger at all.
 *
 * Modes run back to back in a rotating order, RUNS rounds (default 3); prints the median of each mode and
 * the median of its ratios to `none` paired within a round. SECONDS (5), BATCHES (1,100), SYNC=off.
 */
import { SQL } from "bun"
import * as Backlog from "./Backlog.ts"
import * as BenchDatabase from "./BenchDatabase.ts"
import { summarize } from "./Stats.ts"
import { pgbench } from "./scenarios/Pgbench.ts"

const runs = Number(process.env.RUNS ?? 3)
const seconds = Number(process.env.SECONDS ?? 5)
const binary = process.env.PGBENCH ?? "pgbench"
const batches = (process.env.BATCHES ?? "1,100").split(",").map(Number)
// SYNC=off: every pgbench session commits without waiting for its WAL flush, so the run is bound by CPU
// (what triggers cost), not by the shared disk's flushes, which made paired runs differ by 3x on a busy machine
if (process.env.SYNC === "off") process.env.PGOPTIONS = "-c synchronous_commit=off"
const modes = ["0005", "gated", "waiting", "following", "none"] as const
type Mode = (typeof modes)[number]

const oldTriggers = `
CREATE FUNCTION bench_notify_finished_0005() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  ids text;
BEGIN
  IF TG_OP = 'UPDATE' THEN
    SELECT string_agg(id::text, ',') INTO ids
    FROM changed WHERE status IN ('succeeded', 'failed_permanent', 'cancelled');
  ELSE
    SELECT string_agg(id::text, ',') INTO ids
    FROM changed WHERE status NOT IN ('succeeded', 'failed_permanent', 'cancelled');
  END IF;
  IF ids IS NOT NULL THEN
    PERFORM pg_notify('jobq_finished', CASE WHEN octet_length(ids) < 8000 THEN ids ELSE '*' END);
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER bench_0005_update AFTER UPDATE ON jobs REFERENCING NEW TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION bench_notify_finished_0005();
CREATE TRIGGER bench_0005_delete AFTER DELETE ON jobs REFERENCING OLD TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION bench_notify_finished_0005();
ALTER TABLE jobs DISABLE TRIGGER bench_0005_update;
ALTER TABLE jobs DISABLE TRIGGER bench_0005_delete;
`
const gated = [
  "jobs_notify_finished_update",
  "jobs_notify_finished_delete",
  "jobs_record_event_insert",
  "jobs_record_event_update",
  "jobs_record_event_delete"
]
const old = ["bench_0005_update", "bench_0005_delete"]
const toggle = (names: ReadonlyArray<string>, on: boolean) =>
  names.map((t) => `ALTER TABLE jobs ${on ? "ENABLE" : "DISABLE"} TRIGGER ${t};`).join("\n")

await BenchDatabase.using("events_cost_pgbench", async (db) => {
  await db.sql.unsafe(oldTriggers)
  // the gate holder: one session, as the API holds it
  const holder = new SQL({ url: db.url, max: 1 })
  let holding = { waiters: false, events: false }
  const hold = async (waiters: boolean, events: boolean) => {
    if (holding.waiters !== waiters)
      await holder.unsafe(`SELECT pg_advisory_${waiters ? "" : "un"}lock(1785684594, 1)`)
    if (holding.events !== events)
      await holder.unsafe(`SELECT pg_advisory_${events ? "" : "un"}lock(1785684594, 2)`)
    holding = { waiters, events }
  }
  const setMode = async (mode: Mode) => {
    await db.sql.unsafe(toggle(old, mode === "0005") + toggle(gated, mode !== "0005" && mode !== "none"))
    await hold(mode === "waiting" || mode === "following", mode === "following")
  }
  const lines: Array<string> = []
  for (const batch of batches) {
    const rates = new Map<Mode, Array<number>>(modes.map((m) => [m, []]))
    const ratios = new Map<Mode, Array<number>>(modes.map((m) => [m, []]))
    for (let i = 0; i < runs; i++) {
      const round = new Map<Mode, number>()
      const order = modes.map((_, k) => modes[(k + i) % modes.length]!)
      for (const mode of order) {
        await setMode(mode)
        await Backlog.reset(db.sql)
        await db.sql`TRUNCATE event_log`
        await Backlog.fill(db.sql, 20_000)
        await Backlog.analyze(db.sql)
        const r = await pgbench(binary, db.url, "claim-complete.sql", {
          clients: 8,
          seconds,
          variables: { batch: String(batch) }
        })
        round.set(mode, r.tps * batch)
        rates.get(mode)!.push(r.tps * batch)
      }
      for (const mode of modes) ratios.get(mode)!.push(round.get(mode)! / round.get("none")!)
      console.log(
        `batch ${batch} round ${i + 1}: ${modes.map((m) => `${m} ${round.get(m)!.toFixed(0)}`).join(", ")} jobs/s`
      )
    }
    for (const mode of modes) {
      const r = summarize(ratios.get(mode)!)
      lines.push(
        `| ${batch} | ${mode} | ${summarize(rates.get(mode)!).median.toFixed(0)} | ${r.median.toFixed(2)} (${r.min.toFixed(2)}-${r.max.toFixed(2)}) |`
      )
    }
  }
  await holder.close()
  console.log(
    [
      "| batch | triggers | jobs/s, median | / none, median of paired ratios (range) |",
      "|---|---|---|---|",
      ...lines
    ].join("\n")
  )
})
