/** `unique` over HTTP: 201 then 200 with `duplicate: true`, per item in a batch, 422 with paths, a metric. */
import { describe, expect, it } from "bun:test"
import { expectProblem, json, setupApiTests } from "../support/api.ts"
import { parseFamilies } from "../support/prometheus.ts"

const { postJson, request } = await setupApiTests(import.meta.file)

let n = 0
const freshQueue = () => `api-uniq-${++n}`

const duplicatesCounted = async () => {
  const families = parseFamilies(await (await request("/metrics")).text())
  const family = families.find((f) => f.name === "jobq_jobs_duplicate_total")
  return Number(family?.metrics.find((m) => m.labels?.kind === "sleep")?.value ?? 0)
}

describe("POST /jobs with unique", () => {
  it("answers 201 for the new job, then 200 with that job and duplicate: true, counted by kind", async () => {
    const queue = freshQueue()
    const body = {
      kind: "sleep",
      payload: { ms: 1 },
      queue,
      unique: { by: ["kind", "queue"], period: "1 hour" }
    }
    const before = await duplicatesCounted()
    const created = await postJson("/jobs", body)
    expect(created.status).toBe(201)
    const job = await json(created)
    const again = await postJson("/jobs", { ...body, payload: { ms: 2 } })
    expect(again.status).toBe(200)
    expect(again.headers.get("idempotent-replayed")).toBeNull()
    const existing = await json(again)
    expect(existing.id).toBe(job.id)
    expect(existing.duplicate).toBe(true)
    expect(existing.payload).toEqual({ ms: 1 })
    expect((await duplicatesCounted()) - before).toBe(1)
  })

  it("answers per item in a batch", async () => {
    const queue = freshQueue()
    const item = { kind: "sleep", payload: { ms: 1 }, queue, unique: {} }
    const response = await postJson("/jobs/batch", { jobs: [item, item, { ...item, unique: undefined }] })
    expect(response.status).toBe(200)
    const { jobs } = await json(response)
    expect(jobs.map((j: { created: boolean; duplicate: boolean }) => [j.created, j.duplicate])).toEqual([
      [true, false],
      [false, true],
      [true, false]
    ])
    expect(jobs[1].id).toBe(jobs[0].id)
  })

  it("refuses bad options with 422 naming their path", async () => {
    const paths = async (body: unknown, url = "/jobs") => {
      const problem = await expectProblem(await postJson(url, body), 422, "validation-failed")
      return problem.errors.map((e: { path: Array<string | number> }) => e.path.join("."))
    }
    const job = { kind: "cpu_hash", payload: { seed: "s", rounds: 1 } }
    expect(await paths({ ...job, unique: { by: ["kind", "payload.color"] } })).toEqual(["body.unique.by.1"])
    expect(
      await paths({ jobs: [job, { ...job, unique: { by: ["payload.color"] } }] }, "/jobs/batch")
    ).toEqual(["body.jobs.1.unique.by.0"])
    expect(await paths({ ...job, unique: { by: ["color"] } })).toContain("body.unique.by.0")
    expect(await paths({ ...job, unique: { period: "forever" } })).toContain("body.unique.period")
    expect(await paths({ ...job, unique: { period: "0 seconds" } })).toContain("body.unique.period")
    expect(await paths({ ...job, unique: { states: ["queued", "running", "retrying", "nope"] } })).toContain(
      "body.unique.states.3"
    )
    expect(await paths({ ...job, unique: { states: ["succeeded", "running", "retrying"] } })).toContain(
      "body.unique.states"
    )
  })
})
