import { describe, expect, it } from "bun:test"
import { expectProblem, json, setupApiTests } from "../support/api.ts"
import { readExposition } from "../support/prometheus.ts"

const { request, postJson } = await setupApiTests(import.meta.file)

const step = (name: string, dependsOn?: Array<string>) => ({
  name,
  kind: "sleep",
  payload: { ms: 1 },
  queue: "api-flows",
  delayMs: 3_600_000,
  ...(dependsOn === undefined ? {} : { dependsOn })
})

describe("POST /flows, GET /flows/{id}, POST /flows/{id}/cancel", () => {
  it("creates a flow (201): jobs without dependencies queued, the others blocked; reads it back; cancels it", async () => {
    const enqueued = async () =>
      readExposition(await (await request("/metrics")).text()).value("jobq_jobs_enqueued_total", {
        kind: "sleep"
      })
    const before = await enqueued().catch(() => 0)
    const created = await postJson("/flows", { jobs: [step("a"), step("b", ["a"]), step("c", ["a", "b"])] })
    expect(created.status).toBe(201)
    // a flow's jobs count as enqueued
    expect(await enqueued()).toBe(before + 3)
    const flow = await json(created)
    expect(flow.status).toBe("active")
    expect(flow.onFailure).toBe("cancel")
    expect(flow.jobs.map((j: any) => [j.name, j.status, j.dependsOn])).toEqual([
      ["a", "queued", []],
      ["b", "blocked", ["a"]],
      ["c", "blocked", ["a", "b"]]
    ])
    const read = await json(await request(`/flows/${flow.id}`))
    expect(read.jobs.map((j: any) => [j.name, j.status, j.dependsOn])).toEqual(
      flow.jobs.map((j: any) => [j.name, j.status, j.dependsOn])
    )
    // a blocked job shows in GET /jobs under its status
    const blocked = await json(await request("/jobs?status=blocked&queue=api-flows"))
    expect(blocked.jobs.map((j: any) => j.id).sort()).toEqual([flow.jobs[1].id, flow.jobs[2].id].sort())
    // a flow's job names its flow and its name there; a job outside flows has null for both
    const second = await json(await request(`/jobs/${flow.jobs[1].id}`))
    expect({ flowId: second.flowId, flowName: second.flowName }).toEqual({ flowId: flow.id, flowName: "b" })
    const single = await json(await postJson("/jobs", { kind: "noop", payload: {}, queue: "api-flows-none" }))
    expect({ flowId: single.flowId, flowName: single.flowName }).toEqual({ flowId: null, flowName: null })
    const alone = await json(await request(`/jobs/${single.id}`))
    expect({ flowId: alone.flowId, flowName: alone.flowName }).toEqual({ flowId: null, flowName: null })
    const cancelled = await request(`/flows/${flow.id}/cancel`, { method: "POST" })
    expect(cancelled.status).toBe(200)
    const after = await json(cancelled)
    expect(after.status).toBe("cancelled")
    expect(after.jobs.map((j: any) => j.status)).toEqual(["cancelled", "cancelled", "cancelled"])
  })

  it("answers 404 for an unknown or malformed flow id", async () => {
    const body = await expectProblem(await request(`/flows/${crypto.randomUUID()}`), 404, "flow-not-found")
    expect(typeof body.flowId).toBe("string")
    await expectProblem(await request("/flows/not-a-uuid"), 404, "flow-not-found")
    await expectProblem(await request("/flows/not-a-uuid/cancel", { method: "POST" }), 404, "flow-not-found")
    // longer than the router takes (128 characters): still the flow's 404, not a job's
    const long = await expectProblem(await request(`/flows/${"x".repeat(200)}`), 404, "flow-not-found")
    expect(long.flowId).toBe("x".repeat(200))
  })

  it("refuses a cycle, an unknown name, a duplicate name and too many jobs with a 422 naming the job", async () => {
    const cycle = await expectProblem(
      await postJson("/flows", { jobs: [step("a", ["b"]), step("b", ["a"])] }),
      422,
      "validation-failed"
    )
    expect(cycle.detail).toMatch(/^job "(a|b)" depends on itself: (a -> b -> a|b -> a -> b)$/)
    expect(cycle.errors[0].path[0]).toBe("body")
    const unknown = await expectProblem(
      await postJson("/flows", { jobs: [step("a"), step("b", ["nope"])] }),
      422,
      "validation-failed"
    )
    expect(unknown.detail).toBe('job "b" depends on "nope", which is no job of this flow')
    expect(unknown.errors[0].path).toEqual(["body", "jobs", 1, "dependsOn"])
    const duplicate = await expectProblem(
      await postJson("/flows", { jobs: [step("a"), step("a")] }),
      422,
      "validation-failed"
    )
    expect(duplicate.detail).toBe('job name "a" is used twice in the flow')
    const many = await expectProblem(
      await postJson("/flows", { jobs: Array.from({ length: 1001 }, (_, i) => step(`j${i}`)) }),
      422,
      "validation-failed"
    )
    expect(many.detail).toContain('job "j1000" is one too many: a flow holds at most 1000 jobs')
    const badPayload = await expectProblem(
      await postJson("/flows", { jobs: [{ ...step("a"), payload: { ms: "x" } }] }),
      422,
      "validation-failed"
    )
    expect(badPayload.errors[0].path.slice(0, 3)).toEqual(["body", "jobs", 0])
    // nothing of any refused flow was inserted: the queue holds the first test's three jobs only
    const all = await json(await request("/jobs?queue=api-flows"))
    expect(all.jobs.length).toBe(3)
  })
})
