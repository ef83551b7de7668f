/**
 * The schedules endpoints over HTTP: define (checked in full: expression, zone, kind, payload against the
 * kind's schema, unknown keys), read with next fire times in the zone's offset, change, pause and resume
 * (keeping the pause over a replace), trigger, delete, and 404s.
 */
import { describe, expect, it } from "bun:test"
import { expectProblem, json, setupApiTests } from "../support/api.ts"

const api = await setupApiTests(import.meta.file)

const post = (path: string, body?: unknown) =>
  body === undefined ? api.request(path, { method: "POST" }) : api.postJson(path, body)
const patch = (path: string, body: unknown) =>
  api.request(path, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body)
  })

const nightly = {
  name: "nightly-sleep",
  cron: "30 2 * * *",
  timeZone: "Europe/Berlin",
  kind: "sleep",
  payload: { ms: 5 },
  overlap: "skip"
}

describe("POST /schedules", () => {
  it("defines a schedule with its defaults, next fire times in its zone's offset, and no last run", async () => {
    const response = await post("/schedules", nightly)
    expect(response.status).toBe(200)
    const body = await json(response)
    expect(body).toMatchObject({
      name: "nightly-sleep",
      cron: "30 2 * * *",
      timeZone: "Europe/Berlin",
      kind: "sleep",
      payload: { ms: 5 },
      queue: "default",
      priority: 0,
      maxAttempts: 5,
      catchUp: "latest",
      backfill: "1 hour",
      overlap: "skip",
      source: "api",
      paused: false,
      pause: null,
      lastRun: null
    })
    expect(body.nextFireTimes).toHaveLength(5)
    for (const at of body.nextFireTimes) expect(at).toMatch(/T02:30:00\.000\+0[12]:00$/)
  })

  it("accepts shorthands and a seconds field", async () => {
    const hourly = await json(await post("/schedules", { name: "hourly", cron: "@hourly", kind: "noop" }))
    expect(hourly.nextFireTimes[0]).toMatch(/T\d\d:00:00\.000\+00:00$/)
    const seconds = await json(
      await post("/schedules", { name: "every-15s", cron: "*/15 * * * * *", kind: "noop", payload: {} })
    )
    expect(seconds.nextFireTimes[0]).toMatch(/:(00|15|30|45)\.000\+00:00$/)
  })

  it("refuses an unknown kind with a 422 naming body.kind, and writes nothing", async () => {
    const body = await expectProblem(
      await post("/schedules", { name: "bad-kind", cron: "@daily", kind: "nope" }),
      422,
      "validation-failed"
    )
    expect(body.errors[0].path).toEqual(["body", "kind"])
    expect(body.errors[0].message).toContain('unknown job kind "nope"')
    await expectProblem(await api.request("/schedules/bad-kind"), 404, "schedule-not-found")
  })

  it("refuses a payload the kind's schema refuses, naming the field under body.payload", async () => {
    const body = await expectProblem(
      await post("/schedules", {
        name: "bad-payload",
        cron: "@daily",
        kind: "sleep",
        payload: { ms: "x", extra: 1 }
      }),
      422,
      "validation-failed"
    )
    const paths = body.errors.map((e: { path: Array<string> }) => e.path.join("."))
    expect(paths).toContain("body.payload.ms")
    expect(paths).toContain("body.payload.extra")
  })

  it("refuses a bad expression, zone, backfill, name and an unknown key, listing every issue", async () => {
    const body = await expectProblem(
      await post("/schedules", {
        name: "bad name!",
        cron: "61 * * * *",
        timeZone: "Mars/Olympus",
        kind: "noop",
        backfill: "8 days",
        catchUp: "sometimes",
        colour: "blue"
      }),
      422,
      "validation-failed"
    )
    const paths = body.errors.map((e: { path: Array<string> }) => e.path.join("."))
    for (const path of [
      "body.name",
      "body.cron",
      "body.timeZone",
      "body.backfill",
      "body.catchUp",
      "body.colour"
    ])
      expect(paths).toContain(path)
  })
})

describe("GET, PATCH, pause, resume, trigger, DELETE", () => {
  it("pause keeps over a replace; resume answers what it did; trigger enqueues one run and shows it as the last run", async () => {
    await post("/schedules", { ...nightly, name: "steered" })
    const paused = await json(await post("/schedules/steered/pause", { reason: "incident 42" }))
    expect(paused).toMatchObject({ outcome: "paused", schedule: { paused: true, nextFireTimes: [] } })
    expect(paused.schedule.pause.reason).toBe("incident 42")
    const again = await json(await post("/schedules/steered/pause"))
    expect(again.outcome).toBe("already_paused")

    // a replace (as a deploy would) keeps the pause
    const replaced = await json(await post("/schedules", { ...nightly, name: "steered", payload: { ms: 7 } }))
    expect(replaced).toMatchObject({ paused: true, payload: { ms: 7 } })

    const triggered = await post("/schedules/steered/trigger")
    expect(triggered.status).toBe(201)
    const { jobId, schedule } = await json(triggered)
    expect(schedule.lastRun).toEqual({ jobId, slot: null, status: "queued" })
    const job = await json(await api.request(`/jobs/${jobId}`))
    expect(job).toMatchObject({ kind: "sleep", payload: { ms: 7 }, status: "queued" })

    const resumed = await json(await post("/schedules/steered/resume"))
    expect(resumed).toMatchObject({ outcome: "resumed", schedule: { paused: false, pause: null } })
    expect(resumed.schedule.nextFireTimes).toHaveLength(5)
    expect((await json(await post("/schedules/steered/resume"))).outcome).toBe("not_paused")
  })

  it("PATCH changes some fields and checks the result like a new definition", async () => {
    await post("/schedules", { ...nightly, name: "patched" })
    const changed = await json(
      await patch("/schedules/patched", { cron: "0 9 * * 1-5", timeZone: "UTC", priority: 3 })
    )
    expect(changed).toMatchObject({
      cron: "0 9 * * 1-5",
      timeZone: "UTC",
      priority: 3,
      kind: "sleep",
      overlap: "skip"
    })
    expect(changed.nextFireTimes[0]).toMatch(/T09:00:00\.000\+00:00$/)
    const body = await expectProblem(
      await patch("/schedules/patched", { kind: "flaky" }),
      422,
      "validation-failed"
    )
    expect(body.errors.map((e: { path: Array<string> }) => e.path.join("."))).toContain(
      "body.payload.failTimes"
    )
    await expectProblem(await patch("/schedules/nobody", { priority: 1 }), 404, "schedule-not-found")
  })

  it("GET lists in name order with a cursor; DELETE removes, then 404", async () => {
    await post("/schedules", { name: "zz-a", cron: "@daily", kind: "noop" })
    await post("/schedules", { name: "zz-b", cron: "@daily", kind: "noop" })
    const all = await json(await api.request("/schedules?limit=500"))
    const names = all.schedules.map((s: { name: string }) => s.name)
    expect(names).toEqual([...names].sort())
    const first = await json(await api.request("/schedules?limit=1"))
    expect(first.schedules).toHaveLength(1)
    expect(first.nextCursor).toBe(first.schedules[0].name)
    const deleted = await api.request("/schedules/zz-a", { method: "DELETE" })
    expect(deleted.status).toBe(200)
    expect(await json(deleted)).toEqual({ name: "zz-a", deleted: true })
    await expectProblem(await api.request("/schedules/zz-a"), 404, "schedule-not-found")
    await expectProblem(await api.request("/schedules/zz-a", { method: "DELETE" }), 404, "schedule-not-found")
    await expectProblem(await post("/schedules/zz-a/trigger"), 404, "schedule-not-found")
    await expectProblem(await post("/schedules/zz-a/pause"), 404, "schedule-not-found")
  })
})

describe("expressions that never fire", () => {
  it("0 0 30 2 * (30 February) is a 422 naming body.cron, not a 500", async () => {
    const body = await expectProblem(
      await post("/schedules", { name: "feb-30", cron: "0 0 30 2 *", kind: "noop" }),
      422,
      "validation-failed"
    )
    expect(body.errors[0].path).toEqual(["body", "cron"])
    expect(body.errors[0].message).toContain("never fire")
  })
})
