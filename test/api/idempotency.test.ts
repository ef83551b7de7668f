import { describe, expect, it } from "bun:test"
import { JobRepo } from "../../src/queue/JobRepo.ts"
import { json, setupApiTests } from "../support/api.ts"

const { postJson, run } = await setupApiTests(import.meta.file)

const uniqueKey = () => `key-${crypto.randomUUID()}`
let n = 0
const uniqueQueue = () => `api-idem-${++n}`

const jobsIn = (queue: string) =>
  run(JobRepo.use((repo) => repo.list({ queue, limit: 1000 }))).then((page) => page.jobs)

const concurrentSameKey = async (count: number) => {
  const queue = uniqueQueue()
  const key = uniqueKey()
  const responses = await Promise.all(
    Array.from({ length: count }, () =>
      postJson("/jobs", { kind: "sleep", payload: { ms: 10 }, queue }, { "idempotency-key": key })
    )
  )
  const statuses = responses.map((r) => r.status).sort()
  const bodies = await Promise.all(responses.map(json))
  const stored = await jobsIn(queue)
  return { statuses, bodies, stored, key, responses }
}

describe("Idempotency-Key", () => {
  for (const count of [2, 10]) {
    it(`${count} concurrent requests with one key make one job, and every response names it`, async () => {
      const { statuses, bodies, stored, key, responses } = await concurrentSameKey(count)
      expect(stored).toHaveLength(1)
      expect(statuses.filter((s) => s === 201)).toHaveLength(1)
      expect(statuses.filter((s) => s === 200)).toHaveLength(count - 1)
      for (const body of bodies) {
        expect(body.id).toBe(stored[0]!.id)
        expect(body.idempotencyKey).toBe(key)
      }
      const replayed = responses.filter((r) => r.headers.get("idempotent-replayed") === "true")
      expect(replayed).toHaveLength(count - 1)
    })
  }

  it("different keys make different jobs", async () => {
    const queue = uniqueQueue()
    const a = await json(
      await postJson("/jobs", { kind: "noop", payload: {}, queue }, { "idempotency-key": uniqueKey() })
    )
    const b = await json(
      await postJson("/jobs", { kind: "noop", payload: {}, queue }, { "idempotency-key": uniqueKey() })
    )
    expect(a.id).not.toBe(b.id)
    expect(await jobsIn(queue)).toHaveLength(2)
  })

  it("the header beats the body field", async () => {
    const queue = uniqueQueue()
    const header = uniqueKey()
    const body = uniqueKey()
    const response = await postJson(
      "/jobs",
      { kind: "noop", payload: {}, queue, idempotencyKey: body },
      { "idempotency-key": header }
    )
    expect(response.status).toBe(201)
    expect((await json(response)).idempotencyKey).toBe(header)
    // the body's key was not used: a request naming it in the body alone creates a new job
    const bodyOnly = await postJson("/jobs", { kind: "noop", payload: {}, queue, idempotencyKey: body })
    expect(bodyOnly.status).toBe(201)
    // and the header's key replays
    const again = await postJson(
      "/jobs",
      { kind: "noop", payload: {}, queue, idempotencyKey: uniqueKey() },
      { "idempotency-key": header }
    )
    expect(again.status).toBe(200)
    expect(await jobsIn(queue)).toHaveLength(2)
  })

  it("a body key works alone and replays", async () => {
    const queue = uniqueQueue()
    const key = uniqueKey()
    const first = await postJson("/jobs", { kind: "noop", payload: {}, queue, idempotencyKey: key })
    const second = await postJson("/jobs", { kind: "noop", payload: {}, queue, idempotencyKey: key })
    expect([first.status, second.status]).toEqual([201, 200])
    expect((await json(first)).id).toBe((await json(second)).id)
  })

  it("the same key with a different request is a 409 naming the first job", async () => {
    const queue = uniqueQueue()
    const key = uniqueKey()
    const first = await json(
      await postJson("/jobs", { kind: "sleep", payload: { ms: 1 }, queue }, { "idempotency-key": key })
    )
    const response = await postJson(
      "/jobs",
      { kind: "sleep", payload: { ms: 2 }, queue },
      { "idempotency-key": key }
    )
    expect(response.status).toBe(409)
    expect(response.headers.get("content-type")).toStartWith("application/problem+json")
    const problem = await json(response)
    expect(problem).toMatchObject({
      type: "urn:jobq:problem:idempotency-conflict",
      idempotencyKey: key,
      jobId: first.id
    })
    expect(await jobsIn(queue)).toHaveLength(1)
  })

  it("checks the header: an oversized key is a 422 on headers", async () => {
    const response = await postJson(
      "/jobs",
      { kind: "noop", payload: {} },
      { "idempotency-key": "x".repeat(256) }
    )
    expect(response.status).toBe(422)
    expect((await json(response)).errors[0].path).toEqual(["headers", "idempotency-key"])
  })
})
