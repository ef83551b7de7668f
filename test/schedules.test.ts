/**
 * Cron schedules at the level of the tick (`Scheduler.tick`) on a real database, with time driven by
 * `TestClock`: DST both ways in Europe/Berlin, end of month, leap day, the seconds field at :59, catch-up
 * after a simulated downtime, overlap skip, a definition change, and one job per (schedule, slot) when
 * ticks or fires race on separate connections, even after the jobs were pruned.
 */
import { afterAll, describe, expect, it } from "bun:test"
import { Cause, Effect, Exit, Layer, ManagedRuntime, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import * as Database from "../src/db/Database.ts"
import { defineKind } from "../src/domain/JobKind.ts"
import { CodeSchedules, defineSchedule, type ScheduleDefinition } from "../src/domain/Schedule.ts"
import * as QueueLayer from "../src/queue/layer.ts"
import { ScheduleControl } from "../src/queue/ScheduleControl.ts"
import { ScheduleRepo } from "../src/queue/ScheduleRepo.ts"
import { Scheduler } from "../src/queue/Scheduler.ts"
import * as ScheduleTicker from "../src/worker/ScheduleTicker.ts"
import { freshDatabase } from "./support/database.ts"

const report = defineKind({
  name: "report",
  payload: Schema.Struct({ to: Schema.String }),
  handler: () => Effect.void
})
const kinds = [report]

const db = await freshDatabase(import.meta.file)
const makeRuntime = () =>
  ManagedRuntime.make(
    Layer.mergeAll(Scheduler.layer, ScheduleControl.layer).pipe(
      Layer.provideMerge(QueueLayer.layer(kinds)),
      Layer.provideMerge(Database.layerUrl(db.url, { maxConnections: 4 }))
    )
  )
const runtime = makeRuntime()
const other = makeRuntime()
afterAll(async () => {
  await runtime.dispose()
  await other.dispose()
  await db.drop()
})

type R = ManagedRuntime.ManagedRuntime.Services<typeof runtime>
/** Runs `effect` with the clock at `iso`. */
const at = <A, E>(iso: string, effect: Effect.Effect<A, E, R>, rt = runtime) =>
  rt.runPromise(
    Effect.gen(function* () {
      yield* TestClock.setTime(new Date(iso).getTime())
      return yield* effect
    }).pipe(Effect.provide(TestClock.layer()))
  )
const define = (iso: string, def: ScheduleDefinition) =>
  at(
    iso,
    ScheduleControl.use((c) => c.define(def))
  )
const tick = (iso: string, rt = runtime) =>
  at(
    iso,
    Scheduler.use((s) => s.tick),
    rt
  )
/** Ticks every `stepMs` from `from` to `to` (inclusive), as the maintainer would. */
const tickEvery = async (from: string, to: string, stepMs: number) => {
  for (let t = new Date(from).getTime(); t <= new Date(to).getTime(); t += stepMs)
    await tick(new Date(t).toISOString())
}
const sql = <A extends object>(text: string, ...params: Array<unknown>) =>
  runtime.runPromise(Effect.flatMap(SqlClient.SqlClient, (s) => s.unsafe<A>(text, params)))
const fires = (name: string) =>
  sql<{ slot: Date; outcome: string; jobId: string | null }>(
    `SELECT slot, outcome, job_id::text AS "jobId" FROM schedule_fires WHERE schedule = $1 ORDER BY slot`,
    name
  ).then((rows) => rows.map((r) => ({ slot: r.slot.toISOString(), outcome: r.outcome, jobId: r.jobId })))
const slotsOf = (name: string) => fires(name).then((rows) => rows.map((r) => r.slot))
/** Jobs of the schedule's fires, by run_at (the slot). */
const jobsOf = (name: string) =>
  sql<{ runAt: Date; kind: string; payload: unknown }>(
    `SELECT j.run_at AS "runAt", j.kind, j.payload FROM jobs j JOIN schedule_fires f ON f.job_id = j.id
     WHERE f.schedule = $1 ORDER BY j.run_at`,
    name
  )

const minute = 60_000

describe("cron slots in a zone with DST (Europe/Berlin)", () => {
  it("spring forward: a 02:30 daily schedule runs once on the short day, at 03:30 CEST (01:30Z)", async () => {
    await define("2026-03-27T12:00:00Z", {
      name: "berlin-spring",
      cron: "30 2 * * *",
      timeZone: "Europe/Berlin",
      kind: "report",
      payload: { to: "ops" },
      catchUp: "none"
    })
    await tickEvery("2026-03-27T12:00:00Z", "2026-03-30T12:00:00Z", 10 * minute)
    expect(await slotsOf("berlin-spring")).toEqual([
      "2026-03-28T01:30:00.000Z", // 02:30 CET
      "2026-03-29T01:30:00.000Z", // 02:30 does not exist: 03:30 CEST
      "2026-03-30T00:30:00.000Z" // 02:30 CEST
    ])
    const jobs = await jobsOf("berlin-spring")
    expect(jobs.map((j) => j.runAt.toISOString())).toEqual(await slotsOf("berlin-spring"))
    expect(jobs[0]!.payload).toEqual({ to: "ops" })
  })

  it("fall back: a 02:30 daily schedule runs once on the long day, at the first 02:30 (CEST)", async () => {
    await define("2026-10-23T12:00:00Z", {
      name: "berlin-fall",
      cron: "30 2 * * *",
      timeZone: "Europe/Berlin",
      kind: "report",
      payload: { to: "ops" },
      catchUp: "none"
    })
    await tickEvery("2026-10-23T12:00:00Z", "2026-10-26T12:00:00Z", 10 * minute)
    expect(await slotsOf("berlin-fall")).toEqual([
      "2026-10-24T00:30:00.000Z",
      "2026-10-25T00:30:00.000Z", // 02:30 +02:00; the second 02:30 (+01:00, 01:30Z) does not fire
      "2026-10-26T01:30:00.000Z"
    ])
  })

  it("answers the next fire times in the zone's offset, across the change", async () => {
    const info = await define("2026-03-27T12:00:00Z", {
      name: "berlin-next",
      cron: "30 2 * * *",
      timeZone: "Europe/Berlin",
      kind: "report",
      payload: { to: "ops" }
    })
    expect(info.nextFireTimes).toEqual([
      "2026-03-28T02:30:00.000+01:00",
      "2026-03-29T03:30:00.000+02:00",
      "2026-03-30T02:30:00.000+02:00",
      "2026-03-31T02:30:00.000+02:00",
      "2026-04-01T02:30:00.000+02:00"
    ])
  })
})

describe("calendar edges", () => {
  it("end of month: 0 0 31 * * fires only in months with a 31st", async () => {
    const info = await define("2026-01-15T00:00:00Z", {
      name: "month-end",
      cron: "0 0 31 * *",
      kind: "report",
      payload: { to: "x" },
      catchUp: "all",
      backfill: "7 days"
    })
    expect(info.nextFireTimes).toEqual([
      "2026-01-31T00:00:00.000+00:00",
      "2026-03-31T00:00:00.000+00:00",
      "2026-05-31T00:00:00.000+00:00",
      "2026-07-31T00:00:00.000+00:00",
      "2026-08-31T00:00:00.000+00:00"
    ])
    // one tick a day, just after midnight
    await tickEvery("2026-01-15T00:00:10Z", "2026-06-01T00:00:10Z", 24 * 60 * minute)
    expect(await slotsOf("month-end")).toEqual([
      "2026-01-31T00:00:00.000Z",
      "2026-03-31T00:00:00.000Z",
      "2026-05-31T00:00:00.000Z"
    ])
  })

  it("leap day: 0 0 29 2 * fires on 29 February only, every four years", async () => {
    const info = await define("2025-01-01T00:00:00Z", {
      name: "leap-day",
      cron: "0 0 29 2 *",
      kind: "report",
      payload: { to: "x" }
    })
    expect(info.nextFireTimes.slice(0, 3)).toEqual([
      "2028-02-29T00:00:00.000+00:00",
      "2032-02-29T00:00:00.000+00:00",
      "2036-02-29T00:00:00.000+00:00"
    ])
    await tick("2027-02-28T00:00:30Z")
    await tick("2027-03-01T00:00:30Z")
    await tick("2028-02-28T00:00:30Z")
    expect(await slotsOf("leap-day")).toEqual([])
    await tick("2028-02-29T00:00:30Z")
    await tick("2028-03-01T00:00:30Z")
    expect(await slotsOf("leap-day")).toEqual(["2028-02-29T00:00:00.000Z"])
  })

  it("seconds field: 59 * * * * * fires at :59 exactly, not a millisecond early, once per minute", async () => {
    await define("2026-01-01T00:00:00Z", {
      name: "second-59",
      cron: "59 * * * * *",
      kind: "report",
      payload: { to: "x" },
      catchUp: "none"
    })
    await tick("2026-01-01T00:00:58.999Z")
    expect(await slotsOf("second-59")).toEqual([])
    await tick("2026-01-01T00:00:59.000Z")
    await tick("2026-01-01T00:00:59.500Z")
    await tick("2026-01-01T00:01:00.000Z")
    await tick("2026-01-01T00:01:58.999Z")
    expect(await slotsOf("second-59")).toEqual(["2026-01-01T00:00:59.000Z"])
    await tick("2026-01-01T00:01:59.001Z")
    expect(await slotsOf("second-59")).toEqual(["2026-01-01T00:00:59.000Z", "2026-01-01T00:01:59.000Z"])
  })

  it("seconds field at the year's last second: 59 59 23 31 12 *", async () => {
    await define("2026-12-31T23:59:00Z", {
      name: "year-end",
      cron: "59 59 23 31 12 *",
      kind: "report",
      payload: { to: "x" }
    })
    await tick("2026-12-31T23:59:58.999Z")
    await tick("2026-12-31T23:59:59.000Z")
    await tick("2027-01-01T00:00:00.000Z")
    expect(await slotsOf("year-end")).toEqual(["2026-12-31T23:59:59.000Z"])
  })
})

describe("catch-up after downtime", () => {
  // hourly, defined at 00:00:30; the last tick before the downtime at 00:10; the next at 05:30
  const downtime = async (name: string, catchUp: "none" | "latest" | "all", backfill?: string) => {
    await define("2026-02-01T00:00:30Z", {
      name,
      cron: "0 * * * *",
      kind: "report",
      payload: { to: "x" },
      catchUp,
      ...(backfill === undefined ? {} : { backfill })
    })
    await tick("2026-02-01T00:10:00Z")
    return tick("2026-02-01T05:30:00Z")
  }

  it("none: the missed slots are skipped, counted, and the next on-time slot fires", async () => {
    const summary = await downtime("catch-none", "none")
    expect(summary).toMatchObject({ fired: 0, skippedCatchUp: 5 })
    expect(await slotsOf("catch-none")).toEqual([])
    await tick("2026-02-01T06:00:01Z")
    expect(await slotsOf("catch-none")).toEqual(["2026-02-01T06:00:00.000Z"])
  })

  it("latest: the most recent missed slot runs once, the older ones are skipped", async () => {
    const summary = await downtime("catch-latest", "latest", "7 days")
    expect(summary).toMatchObject({ fired: 1, skippedCatchUp: 4 })
    expect(await slotsOf("catch-latest")).toEqual(["2026-02-01T05:00:00.000Z"])
    await tick("2026-02-01T05:30:01Z")
    expect(await slotsOf("catch-latest")).toEqual(["2026-02-01T05:00:00.000Z"])
  })

  it("latest: slots less than a minute late (a maintainer's takeover) all fire; a missed one before an on-time one does not", async () => {
    await define("2026-02-02T00:00:00Z", {
      name: "latest-short",
      cron: "* * * * * *",
      kind: "report",
      payload: { to: "x" }
    })
    await tick("2026-02-02T00:00:01Z")
    // a 14 s takeover
    await tick("2026-02-02T00:00:15Z")
    expect(await slotsOf("latest-short")).toHaveLength(15)
    await define("2026-02-02T00:00:00Z", {
      name: "latest-minutes",
      cron: "* * * * *",
      kind: "report",
      payload: { to: "x" }
    })
    await tick("2026-02-02T00:01:00Z")
    // 00:02 is 90 s late (missed), 00:03 is 30 s late (on time)
    await tick("2026-02-02T00:03:30Z")
    expect(await slotsOf("latest-minutes")).toEqual(["2026-02-02T00:01:00.000Z", "2026-02-02T00:03:00.000Z"])
  })

  it("all: every missed slot within the backfill window runs, oldest first; older ones are skipped", async () => {
    const summary = await downtime("catch-all", "all", "3 hours")
    // window: 02:30 - 05:30
    expect(summary).toMatchObject({ fired: 3, skippedCatchUp: 2 })
    expect(await slotsOf("catch-all")).toEqual([
      "2026-02-01T03:00:00.000Z",
      "2026-02-01T04:00:00.000Z",
      "2026-02-01T05:00:00.000Z"
    ])
  })

  it("a downtime longer than the backfill window runs nothing older than the window", async () => {
    await define("2026-02-01T00:00:30Z", {
      name: "catch-long",
      cron: "*/10 * * * *",
      kind: "report",
      payload: { to: "x" },
      catchUp: "all",
      backfill: "30 minutes"
    })
    const summary = await tick("2026-02-08T00:05:00Z")
    // (the summary covers every schedule due: the earlier tests' schedules too)
    expect(summary.skippedCatchUp).toBeGreaterThan(1000)
    expect(await slotsOf("catch-long")).toEqual([
      "2026-02-07T23:40:00.000Z",
      "2026-02-07T23:50:00.000Z",
      "2026-02-08T00:00:00.000Z"
    ])
  })
})

describe("overlap", () => {
  it("skip: a slot is skipped (and recorded so) while the previous run is queued or running", async () => {
    await define("2026-04-01T00:00:00Z", {
      name: "overlap-skip",
      cron: "* * * * *",
      kind: "report",
      payload: { to: "x" },
      overlap: "skip"
    })
    await tick("2026-04-01T00:01:00Z")
    await tick("2026-04-01T00:02:00Z")
    const [first] = await fires("overlap-skip")
    await sql(
      `UPDATE jobs SET status = 'running', lease_owner = 'w', lease_expires_at = now() + interval '1 minute' WHERE id = $1`,
      first!.jobId
    )
    const summary = await tick("2026-04-01T00:03:00Z")
    expect(summary.skippedOverlap).toBe(1)
    await sql(
      `UPDATE jobs SET status = 'succeeded', lease_owner = NULL, lease_expires_at = NULL, finished_at = now() WHERE id = $1`,
      first!.jobId
    )
    await tick("2026-04-01T00:04:00Z")
    const rows = await fires("overlap-skip")
    expect(rows.map((r) => [r.slot, r.outcome])).toEqual([
      ["2026-04-01T00:01:00.000Z", "enqueued"],
      ["2026-04-01T00:02:00.000Z", "skipped_overlap"],
      ["2026-04-01T00:03:00.000Z", "skipped_overlap"],
      ["2026-04-01T00:04:00.000Z", "enqueued"]
    ])
    const info = await at(
      "2026-04-01T00:04:10Z",
      ScheduleControl.use((c) => c.get("overlap-skip"))
    )
    expect(info.lastRun).toEqual({
      jobId: rows[3]!.jobId!,
      slot: new Date("2026-04-01T00:04:00Z"),
      status: "queued"
    })
  })

  it("allow: every slot enqueues, whatever the previous run is doing", async () => {
    await define("2026-04-01T00:00:00Z", {
      name: "overlap-allow",
      cron: "* * * * *",
      kind: "report",
      payload: { to: "x" }
    })
    await tick("2026-04-01T00:01:00Z")
    await tick("2026-04-01T00:02:00Z")
    expect((await fires("overlap-allow")).map((r) => r.outcome)).toEqual(["enqueued", "enqueued"])
  })
})

describe("a definition change (a deploy)", () => {
  it("a new expression counts from the change on: no slot fires twice, none before the change is caught up", async () => {
    const def = { name: "redefined", cron: "0 * * * *", kind: "report", payload: { to: "x" } } as const
    await define("2026-05-01T00:30:00Z", def)
    await tick("2026-05-01T01:00:05Z")
    // same definition again (every worker start): nothing changes
    await define("2026-05-01T01:10:00Z", def)
    await tick("2026-05-01T01:10:05Z")
    // a new expression whose slots include 01:00 and 01:05 (both before the change)
    await define("2026-05-01T01:12:00Z", { ...def, cron: "*/5 * * * *" })
    await tick("2026-05-01T01:12:05Z")
    await tick("2026-05-01T01:15:05Z")
    expect(await slotsOf("redefined")).toEqual(["2026-05-01T01:00:00.000Z", "2026-05-01T01:15:00.000Z"])
  })
})

describe("one job per (schedule, slot)", () => {
  it("two ticks on separate connections at the same instant make one job per slot", async () => {
    await define("2026-06-01T00:00:00Z", {
      name: "racing-ticks",
      cron: "* * * * * *",
      kind: "report",
      payload: { to: "racing" },
      catchUp: "all"
    })
    for (let s = 1; s <= 20; s++) {
      const iso = new Date(new Date("2026-06-01T00:00:00Z").getTime() + s * 1000).toISOString()
      await Promise.all([tick(iso, runtime), tick(iso, other), tick(iso, runtime), tick(iso, other)])
    }
    // the schedule's jobs themselves (its payload tells them from the other schedules'), by run_at (the slot):
    // 20 slots, one job each
    const perSlot = await sql<{ n: number }>(
      `SELECT count(*)::integer AS n FROM jobs
       WHERE kind = 'report' AND payload->>'to' = 'racing'
       GROUP BY run_at`
    )
    expect(perSlot.length).toBe(20)
    expect(perSlot.every((row) => row.n === 1)).toBe(true)
    expect((await jobsOf("racing-ticks")).length).toBe(20)
  })

  it("the database refuses a second job for a slot: concurrent fires on two pools, then again after the jobs were pruned", async () => {
    await define("2026-06-02T00:00:00Z", {
      name: "racing-fires",
      cron: "* * * * *",
      kind: "report",
      payload: { to: "x" }
    })
    const slot = new Date("2026-06-02T00:01:00Z")
    const fire = (rt: typeof runtime) =>
      rt.runPromise(ScheduleRepo.use((r) => r.fireSlot("racing-fires", slot)))
    const ids = await Promise.all(Array.from({ length: 10 }, (_, i) => fire(i % 2 === 0 ? runtime : other)))
    expect(ids.filter((id) => id !== undefined).length).toBe(1)
    expect((await jobsOf("racing-fires")).length).toBe(1)
    await sql(`DELETE FROM jobs WHERE kind = 'report'`)
    expect(await fire(runtime)).toBeUndefined()
    expect(await fire(other)).toBeUndefined()
    const count = await sql<{ n: number }>(`SELECT count(*)::integer AS n FROM jobs`)
    expect(count[0]!.n).toBe(0)
  })
})

describe("schedules defined in code", () => {
  const upsert = (schedules: ReadonlyArray<ScheduleDefinition>) =>
    runtime.runPromiseExit(
      ScheduleTicker.upsertCodeSchedules.pipe(Effect.provide(CodeSchedules.layer(schedules)), Effect.scoped)
    )

  it("a start with an unknown kind or a payload the kind refuses fails, naming each schedule, and writes nothing", async () => {
    const exit = await upsert([
      defineSchedule({ name: "code-fine", cron: "@daily", kind: report, payload: { to: "a" } }),
      defineSchedule({ name: "code-no-kind", cron: "@hourly", kind: "nope" }),
      { name: "code-bad-payload", cron: "@weekly", kind: "report", payload: { to: 3 } }
    ])
    expect(Exit.isFailure(exit)).toBe(true)
    const text = Exit.isFailure(exit) ? Cause.pretty(exit.cause) : ""
    expect(text).toContain('schedule "code-no-kind": kind: unknown job kind "nope"')
    expect(text).toContain('schedule "code-bad-payload": payload.to')
    expect(await sql(`SELECT name FROM schedules WHERE name LIKE 'code-%'`)).toEqual([])
  })

  it("an upsert at start keeps an operator's pause and replaces the definition", async () => {
    const def = defineSchedule({ name: "code-kept", cron: "@daily", kind: report, payload: { to: "a" } })
    expect(Exit.isSuccess(await upsert([def]))).toBe(true)
    await runtime.runPromise(ScheduleControl.use((c) => c.pause("code-kept", { reason: "incident" })))
    expect(Exit.isSuccess(await upsert([{ ...def, payload: { to: "b" } }]))).toBe(true)
    const info = await runtime.runPromise(ScheduleControl.use((c) => c.get("code-kept")))
    expect(info).toMatchObject({ paused: true, source: "code", payload: { to: "b" }, nextFireTimes: [] })
    expect(info.pause?.reason).toBe("incident")
  })
})
