/**
 * Cron schedules across real worker processes: three workers upsert the same code-defined schedules at
 * once, the elected maintainer fires them, and it is killed mid-run so another takes over. The database's
 * own record must show one job per (schedule, slot), no gap in an every-second schedule with catch-up
 * `all`, and, for an overlap `skip` schedule whose runs take 2.5 s, runs that never overlap.
 */
import { describe, expect, it } from "bun:test"
import { fileURLToPath } from "node:url"
import { recordLogTables } from "./fixtures/recordingKinds.ts"
import { freePort } from "./support/ports.ts"
import { exitCode, spawnProgram, started } from "./support/processes.ts"
import { waitFor } from "./support/runtime.ts"
import { setupTimedJobs } from "./support/timedJobs.ts"

const scheduled = fileURLToPath(new URL("./fixtures/scheduledKinds.ts", import.meta.url))
const { db, sql, spansOf, spawn, stopAll } = await setupTimedJobs(import.meta.file)
for (const table of recordLogTables) await sql((s) => s.unsafe(table))

describe("cron schedules across worker processes", () => {
  it("one job per slot through a maintainer's death; overlap skip never runs two at once", async () => {
    const env = { JOBS_MODULE: scheduled, WORKER_LEADER_LEASE: "2 seconds", WORKER_CONCURRENCY: "2" }
    const ports = new Map(["cron-a", "cron-b", "cron-c"].map((id) => [id, freePort()]))
    const three = [...ports].map(([id, port]) => spawn(id, { ...env, WORKER_METRICS_PORT: String(port) }))
    await Promise.all(three.map((w) => started(w)))
    // each worker upserts the code's schedules as it starts (beside its pool, so maybe after its "started")
    const schedules = await waitFor(
      "the code's schedules to be upserted",
      async () => {
        const rows = await sql<{ name: string; source: string; paused: boolean }>(
          (s) => s`SELECT name, source, paused_at IS NOT NULL AS paused FROM schedules ORDER BY name`
        )
        return rows.length === 2 ? rows : undefined
      },
      { timeoutMs: 20_000 }
    )
    expect(schedules).toEqual([
      { name: "every-second", source: "code", paused: false },
      { name: "slow-overlap", source: "code", paused: false }
    ])
    const fired = async () =>
      (
        await sql<{ n: number }>(
          (s) => s`SELECT count(*)::int AS n FROM schedule_fires WHERE schedule = 'every-second'`
        )
      )[0]!.n
    await waitFor("three slots fired", async () => ((await fired()) >= 3 ? true : undefined), {
      timeoutMs: 20_000
    })

    await waitFor(
      "a second slow run to finish",
      async () => ((await spansOf("slow-overlap")).length >= 2 ? true : undefined),
      { timeoutMs: 20_000 }
    )

    // kill the maintainer: another takes over within the lease and catches up the slots it missed
    const leader = (
      await sql<{ holder: string }>((s) => s`SELECT holder FROM leaders WHERE role = 'maintenance'`)
    )[0]!.holder
    const victim = three.find((w) => w.id === leader)!
    // the maintainer counted its fires and its overlap skips (no schedule label: names are client-chosen)
    const metrics = await waitFor(
      "the maintainer's schedule metrics",
      async () => {
        const text = await fetch(`http://127.0.0.1:${ports.get(leader)}/metrics`)
          .then((r) => r.text())
          .catch(() => "")
        return /jobq_schedule_fires_total\{[^}]*\} [1-9]/.test(text) &&
          /jobq_schedule_skipped_slots_total\{reason="overlap"[^}]*\} [1-9]/.test(text)
          ? text
          : undefined
      },
      { timeoutMs: 20_000 }
    )
    expect(metrics).not.toContain("schedule=")
    const before = await fired()
    victim.process.kill("SIGKILL")
    await waitFor(
      "another maintainer to fire five more slots",
      async () => ((await fired()) >= before + 5 ? true : undefined),
      { timeoutMs: 20_000 }
    )
    await stopAll()

    // every second from the first slot to the last fired once (the primary key says "once"; no gap here)
    const slots = await sql<{ slot: number; job: string | null }>(
      (s) => s`
        SELECT extract(epoch FROM f.slot)::float8 * 1000 AS slot, j.id::text AS job
        FROM schedule_fires f LEFT JOIN jobs j ON j.id = f.job_id
        WHERE f.schedule = 'every-second' ORDER BY f.slot`
    )
    expect(slots.length).toBeGreaterThanOrEqual(8)
    for (let i = 1; i < slots.length; i++) expect(slots[i]!.slot - slots[i - 1]!.slot).toBe(1000)
    // each slot's job exists, and no other job of the schedule's kind does: one job per slot. (Counted by
    // id, not run_at: a job released at shutdown or rescued from the killed worker gets a new run_at.)
    expect(slots.every((s) => s.job !== null)).toBe(true)
    const jobs = await sql<{ n: number }>((s) => s`SELECT count(*)::int AS n FROM jobs WHERE kind = 'record'`)
    expect(jobs[0]!.n).toBe(slots.length)

    // overlap skip: slots during a run were skipped, and no two runs overlapped
    const outcomes = await sql<{ outcome: string; n: number }>(
      (s) =>
        s`SELECT outcome, count(*)::int AS n FROM schedule_fires WHERE schedule = 'slow-overlap' GROUP BY outcome`
    )
    const by = Object.fromEntries(outcomes.map((o) => [o.outcome, o.n]))
    expect(by.skipped_overlap).toBeGreaterThan(2)
    const spans = [...(await spansOf("slow-overlap"))].sort((a, b) => a.began - b.began)
    for (let i = 1; i < spans.length; i++)
      expect(spans[i]!.claimed).toBeGreaterThanOrEqual(spans[i - 1]!.ended)
  }, 120_000)

  it("a worker whose code defines an invalid schedule does not start, naming each bad schedule and field in one line", async () => {
    const program = spawnProgram("src/worker.ts", {
      ...process.env,
      DATABASE_URL: db.url,
      JOBS_MODULE: fileURLToPath(new URL("./fixtures/badSchedules.ts", import.meta.url)),
      WORKER_ID: "cron-bad",
      WORKER_METRICS_PORT: "0",
      DATABASE_POOL_MAX: "2"
    })
    const code = await exitCode(program, 30_000)
    expect(code).not.toBe(0)
    const said = program.stdout() + program.stderr()
    expect(said).toContain('schedule "ghost-kind": kind: unknown job kind "ghost"')
    expect(said).toContain('schedule "bad-payload": payload.sleepMs')
    // one line, as every start-up failure (platform/Main.ts): no stack trace
    expect(program.stderr()).not.toContain("    at ")
    const written = await sql<{ name: string }>(
      (s) => s`SELECT name FROM schedules WHERE name IN ('fine', 'ghost-kind', 'bad-payload')`
    )
    expect(written).toEqual([])
  })
})
