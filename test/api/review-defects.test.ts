/**
 * Defects a review of cron schedules, flows and the dashboard's server side found, one regression test each:
 * bad input answered with a 4xx (never a 500), and flow jobs that an operator's action must not strand.
 */
import { describe, expect, it } from "bun:test"
import { expectProblem, json, setupApiTests } from "../support/api.ts"

const { request, postJson } = await setupApiTests(import.meta.file)

describe("text Postgres cannot store is a 422, not a 500", () => {
  it("a pause reason or pauser with NUL or a lone surrogate (queues and schedules)", async () => {
    expect(
      (await postJson("/schedules", { name: "nul-pause", kind: "noop", cron: "* * * * *" })).status
    ).toBe(200)
    for (const path of ["/queues/nul-pause/pause", "/schedules/nul-pause/pause"]) {
      for (const body of [{ reason: "a\u0000b" }, { by: "a\u0000" }, { reason: "a\ud800" }]) {
        const problem = await expectProblem(await postJson(path, body), 422, "validation-failed")
        expect(problem.errors[0].path).toEqual(["body", Object.keys(body)[0]])
      }
    }
    // nothing was paused
    expect((await json(await request("/queues/nul-pause"))).paused ?? false).toBe(false)
    expect((await json(await request("/schedules/nul-pause"))).paused).toBe(false)
  })
})
