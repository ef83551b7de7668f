import { describe, expect, it } from "bun:test"
import { JobRepo } from "../../src/queue/JobRepo.ts"
import { expectProblem, json, setupApiTests } from "../support/api.ts"

const { request, postJson, run } = await setupApiTests(import.meta.file, { maxBodyBytes: 64 * 1024 })

let n = 0
const uniqueQueue = () => `api-jobs-${++n}`

const countJobs = (queue: string) =>
  run(JobRepo.use((repo) => repo.list({ queue, limit: 10_000 }))).then((page) => page.jobs.length)

describe("POST /jobs and GET /jobs/{id}", () => {
  it("creates a job (201) with its defaults and reads it back", async () => {
    const queue = uniqueQueue()
    const response = await postJson("/jobs", { kind: "sleep", payload: { ms: 5 }, queue, priority: -3 })
    expect(response.status).toBe(201)
    const job = await json(response)
    expect(job).toMatchObject({
      kind: "sleep",
      payload: { ms: 5 },
      queue,
      priority: -3,
      status: "queued",
      attempts: 0,
      maxAttempts: 5,
      idempotencyKey: null
    })
    expect(Date.parse(job.runAt)).not.toBeNaN()
    const read = await request(`/jobs/${job.id}`)
    expect(read.status).toBe(200)
    expect(await json(read)).toEqual(job)
  })

  it("schedules with runAt or delayMs, and refuses both at once", async () => {
    const runAt = new Date(Date.now() + 3_600_000).toISOString()
    const at = await json(await postJson("/jobs", { kind: "noop", payload: {}, runAt }))
    expect(at.runAt).toBe(runAt)
    const delayed = await json(await postJson("/jobs", { kind: "noop", payload: {}, delayMs: 60_000 }))
    expect(Date.parse(delayed.runAt) - Date.now()).toBeGreaterThan(50_000)
    const both = await expectProblem(
      await postJson("/jobs", { kind: "noop", payload: {}, runAt, delayMs: 5 }),
      422,
      "validation-failed"
    )
    expect(both.errors).toEqual([
      { path: ["body", "delayMs"], message: "runAt and delayMs are mutually exclusive" }
    ])
  })

  it("answers 404 for an unknown id and for a malformed one", async () => {
    const unknown = crypto.randomUUID()
    const missing = await expectProblem(await request(`/jobs/${unknown}`), 404, "job-not-found")
    expect(missing.jobId).toBe(unknown)
    const malformed = await expectProblem(await request("/jobs/not-a-uuid"), 404, "job-not-found")
    expect(malformed.jobId).toBe("not-a-uuid")
  })

  it("answers 422 listing every issue with its path", async () => {
    const queue = uniqueQueue()
    const body = await expectProblem(
      await postJson("/jobs", {
        kind: "cpu_hash",
        payload: { seed: 7, rounds: 0 },
        queue: "",
        maxAttempts: 0
      }),
      422,
      "validation-failed"
    )
    const paths = body.errors.map((e: any) => e.path.join("."))
    expect(paths.sort()).toEqual([
      "body.maxAttempts",
      "body.payload.rounds",
      "body.payload.seed",
      "body.queue"
    ])
    for (const issue of body.errors) expect(issue.message.length).toBeGreaterThan(0)
    expect(await countJobs(queue)).toBe(0)
  })

  it("answers 422 naming the known kinds for an unknown kind", async () => {
    const body = await expectProblem(
      await postJson("/jobs", { kind: "nope", payload: {} }),
      422,
      "validation-failed"
    )
    expect(body.errors[0].message).toContain("noop, sleep, flaky, cpu_hash")
  })

  it("answers 400 for malformed JSON", async () => {
    await expectProblem(await postJson("/jobs", '{"kind": "noop", '), 400, "malformed-json")
  })

  it("answers 415 for a body that is not JSON", async () => {
    const body = await expectProblem(
      await request("/jobs", { method: "POST", headers: { "content-type": "text/plain" }, body: "noop" }),
      415,
      "unsupported-media-type"
    )
    expect(body.accepted).toEqual(["application/json"])
  })

  it("answers 413 for a declared length over MAX_BODY_BYTES without reading the body", async () => {
    let pulled = 0
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++
        controller.enqueue(new Uint8Array(16 * 1024))
      }
    })
    const response = await request("/jobs", {
      method: "POST",
      headers: { "content-type": "application/json", "content-length": String(10 * 1024 * 1024) },
      body,
      duplex: "half"
    } as RequestInit)
    const problem = await expectProblem(response, 413, "payload-too-large")
    expect(problem.maxBytes).toBe(64 * 1024)
    expect(pulled).toBeLessThanOrEqual(1)
  })

  it("answers 413 for a chunked body as soon as it passes the limit", async () => {
    let sent = 0
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 50 * 1024 * 1024) return controller.close()
        sent += 16 * 1024
        controller.enqueue(new Uint8Array(16 * 1024).fill(32))
      }
    })
    const response = await request("/jobs", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      duplex: "half"
    } as RequestInit)
    await expectProblem(response, 413, "payload-too-large")
    expect(sent).toBeLessThan(1024 * 1024)
  })

  it("answers 405 with Allow for a method the route does not take, 404 for an unknown route", async () => {
    const response = await request("/jobs", { method: "DELETE" })
    const body = await expectProblem(response, 405, "method-not-allowed")
    expect(response.headers.get("allow")!.split(", ").sort()).toEqual(["GET", "HEAD", "POST"])
    expect(body.allowed.sort()).toEqual(["GET", "HEAD", "POST"])
    await expectProblem(
      await request(`/jobs/${crypto.randomUUID()}`, { method: "PUT" }),
      405,
      "method-not-allowed"
    )
    await expectProblem(await request("/nowhere"), 404, "route-not-found")
  })
})

describe("GET /jobs", () => {
  it("pages through a filtered list with a cursor", async () => {
    const queue = uniqueQueue()
    const created: Array<string> = []
    for (let i = 0; i < 5; i++) {
      created.push((await json(await postJson("/jobs", { kind: "noop", payload: {}, queue }))).id)
    }
    await postJson("/jobs", { kind: "sleep", payload: { ms: 1 }, queue })
    const seen: Array<string> = []
    let cursor: string | null = null
    for (let page = 0; page < 10; page++) {
      const response = await request(
        `/jobs?queue=${queue}&kind=noop&status=queued&limit=2${cursor === null ? "" : `&cursor=${cursor}`}`
      )
      expect(response.status).toBe(200)
      const body = await json(response)
      expect(body.jobs.length).toBeLessThanOrEqual(2)
      seen.push(...body.jobs.map((j: any) => j.id))
      cursor = body.nextCursor
      if (cursor === null) break
    }
    expect(seen).toEqual(created)
  })

  it("bounds limit and checks the filters (422)", async () => {
    for (const query of ["limit=0", "limit=501", "limit=x", "status=done", "cursor=nope"]) {
      const body = await expectProblem(await request(`/jobs?${query}`), 422, "validation-failed")
      expect(body.errors[0].path[0]).toBe("query")
    }
    expect((await request("/jobs?limit=500")).status).toBe(200)
  })
})

describe("POST /jobs/batch", () => {
  it("enqueues every job in order", async () => {
    const queue = uniqueQueue()
    const response = await postJson("/jobs/batch", {
      jobs: [
        { kind: "noop", payload: {}, queue },
        { kind: "sleep", payload: { ms: 3 }, queue },
        { kind: "flaky", payload: { failTimes: 1 }, queue }
      ]
    })
    expect(response.status).toBe(200)
    const body = await json(response)
    expect(body.jobs.map((e: any) => [e.created, e.status])).toEqual([
      [true, "queued"],
      [true, "queued"],
      [true, "queued"]
    ])
    const kinds = await Promise.all(
      body.jobs.map(async (e: any) => (await json(await request(`/jobs/${e.id}`))).kind)
    )
    expect(kinds).toEqual(["noop", "sleep", "flaky"])
    expect(await countJobs(queue)).toBe(3)
  })

  it("rejects the whole batch when one item is invalid, naming its index", async () => {
    const queue = uniqueQueue()
    const body = await expectProblem(
      await postJson("/jobs/batch", {
        jobs: [
          { kind: "noop", payload: {}, queue },
          { kind: "noop", payload: {}, queue },
          { kind: "sleep", payload: { ms: -1 }, queue }
        ]
      }),
      422,
      "validation-failed"
    )
    expect(body.errors).toHaveLength(1)
    expect(body.errors[0].path).toEqual(["body", "jobs", 2, "payload", "ms"])
    expect(await countJobs(queue)).toBe(0)
  })

  it("rejects the whole batch when one key clashes with an earlier request (409)", async () => {
    const queue = uniqueQueue()
    const key = `batch-clash-${crypto.randomUUID()}`
    expect(
      (await postJson("/jobs", { kind: "noop", payload: {}, queue: "elsewhere", idempotencyKey: key })).status
    ).toBe(201)
    const body = await expectProblem(
      await postJson("/jobs/batch", {
        jobs: [
          { kind: "noop", payload: {}, queue },
          { kind: "noop", payload: {}, queue, idempotencyKey: key }
        ]
      }),
      409,
      "idempotency-conflict"
    )
    expect(body.idempotencyKey).toBe(key)
    expect(await countJobs(queue)).toBe(0)
  })

  it("bounds the batch size (1 to 1000)", async () => {
    const jobs = Array.from({ length: 1001 }, () => ({ kind: "noop", payload: {} }))
    const tooMany = await expectProblem(await postJson("/jobs/batch", { jobs }), 422, "validation-failed")
    expect(tooMany.errors[0].path).toEqual(["body", "jobs"])
    await expectProblem(await postJson("/jobs/batch", { jobs: [] }), 422, "validation-failed")
  })
})
