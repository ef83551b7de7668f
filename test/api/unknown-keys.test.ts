/**
 * The document says `additionalProperties: false`; the server agrees: a key the contract does not declare,
 * at the top of a job, of a batch, or inside any kind's payload (the demo kinds and a user's), is a 422 that
 * names each one, and nothing is stored.
 */
import { describe, expect, it } from "bun:test"
import { Effect, Schema } from "effect"
import { defineKind } from "../../src/domain/JobKind.ts"
import { JobRepo } from "../../src/queue/JobRepo.ts"
import { kinds as fixtureKinds } from "../fixtures/kinds.ts"
import { expectProblem, json, setupApiTests, webHandler } from "../support/api.ts"

const bare = defineKind({ name: "bare", payload: Schema.Struct({}), handler: () => Effect.void })
const { postJson, request, run, db } = await setupApiTests(import.meta.file)
const userApi = webHandler(db.url, { kinds: [...fixtureKinds, bare] })
const postUser = (path: string, body: unknown) =>
  userApi(
    new Request(`http://api.test${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body)
    })
  )

let n = 0
const uniqueQueue = () => `unknown-keys-${++n}`
const countJobs = (queue: string) =>
  run(JobRepo.use((repo) => repo.list({ queue, limit: 100 }))).then((page) => page.jobs.length)

/** The 422's issue paths, sorted, each joined with dots. */
const rejected = async (response: Response) => {
  const problem = await expectProblem(response, 422, "validation-failed")
  for (const issue of problem.errors) expect(issue.message).toBe("Expected no excess property")
  return problem.errors.map((issue: { path: Array<string | number> }) => issue.path.join(".")).sort()
}

describe("unknown keys in an enqueue body", () => {
  it("are rejected at the top of a job and inside its payload, every one named", async () => {
    const queue = uniqueQueue()
    const response = await postJson("/jobs", {
      kind: "sleep",
      payload: { ms: 5, note: "x" },
      queue,
      prio: 1,
      run_at: "2030-01-01T00:00:00Z"
    })
    expect(await rejected(response)).toEqual(["body.payload.note", "body.prio", "body.run_at"])
    expect(await countJobs(queue)).toBe(0)
  })

  it("are rejected at the top of a batch, of its items and in their payloads, and nothing is stored", async () => {
    const queue = uniqueQueue()
    const response = await postJson("/jobs/batch", {
      jobs: [
        { kind: "noop", payload: {}, queue },
        { kind: "flaky", payload: { failTimes: 1, extra: true }, queue, tag: "x" }
      ],
      atomic: true
    })
    expect(await rejected(response)).toEqual(["body.atomic", "body.jobs.1.payload.extra", "body.jobs.1.tag"])
    expect(await countJobs(queue)).toBe(0)
  })

  it("noop takes `{}` and nothing else", async () => {
    const queue = uniqueQueue()
    expect((await postJson("/jobs", { kind: "noop", payload: {}, queue })).status).toBe(201)
    expect(await rejected(await postJson("/jobs", { kind: "noop", payload: { a: 1 }, queue }))).toEqual([
      "body.payload.a"
    ])
    for (const payload of [5, "x", [], true, null]) {
      const problem = await expectProblem(
        await postJson("/jobs", { kind: "noop", payload, queue }),
        422,
        "validation-failed"
      )
      expect(problem.errors.map((issue: { path: Array<string> }) => issue.path.join("."))).toEqual([
        "body.payload"
      ])
    }
    expect(await countJobs(queue)).toBe(1)
  })

  it("a user's kinds (JOBS_MODULE) follow the same rule, nested structs and empty ones included", async () => {
    const queue = uniqueQueue()
    const ok = await postUser("/jobs", {
      kind: "send_email",
      payload: { to: [{ address: "a@b.c" }], body: "hi" },
      queue
    })
    expect(ok.status).toBe(201)
    const nested = await postUser("/jobs", {
      kind: "send_email",
      payload: { to: [{ address: "a@b.c", cc: "d@e.f" }], body: "hi", bcc: [] },
      queue
    })
    expect(await rejected(nested)).toEqual(["body.payload.bcc", "body.payload.to.0.cc"])
    expect((await postUser("/jobs", { kind: "bare", payload: {}, queue })).status).toBe(201)
    expect(await rejected(await postUser("/jobs", { kind: "bare", payload: { a: 1 }, queue }))).toEqual([
      "body.payload.a"
    ])
    expect(await countJobs(queue)).toBe(2)
  })

  it("a body of ~90,000 unknown keys is answered with the first 100 and a count, not 6 MB", async () => {
    const keys = Array.from({ length: 90_000 }, (_, i) => `"k${i}":0`).join(",")
    const response = await postJson("/jobs", `{"kind":"sleep","payload":{"ms":1,${keys}}}`)
    const text = await response.clone().text()
    expect(text.length).toBeLessThan(20_000)
    const problem = await expectProblem(response, 422, "validation-failed")
    expect(problem.errors).toHaveLength(100)
    expect(problem.errors[0]).toEqual({
      path: ["body", "payload", "k0"],
      message: "Expected no excess property"
    })
    expect(problem.detail).toBe(
      "body.payload.k0: Expected no excess property (and 89999 more); the first 100 are listed"
    )
  })

  it("the document says so: no additional properties in any job, batch or payload schema", async () => {
    const spec = await json(await request("/api-docs/openapi.json"))
    const schemas = spec.components.schemas
    expect(schemas.NewJobBatch.additionalProperties).toBe(false)
    for (const kind of ["noop", "sleep", "flaky", "cpu_hash"]) {
      const member = schemas[`NewJob_${kind}`]
      expect(member.additionalProperties).toBe(false)
      expect(member.properties.payload.type).toBe("object")
      expect(member.properties.payload.additionalProperties).toBe(false)
    }
    expect(schemas.NewJob_noop.properties.payload.properties).toBeUndefined()
  })
})
