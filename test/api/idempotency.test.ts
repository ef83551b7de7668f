import { describe, expect, it } from "bun:test"
import { connect } from "node:net"
import { JobRepo } from "../../src/queue/JobRepo.ts"
import { expectProblem, json, serve, setupApiTests } from "../support/api.ts"

const { postJson, run, handler } = await setupApiTests(import.meta.file)
const baseUrl = new URL(serve(handler))

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

/**
 * POST /jobs over a raw socket, the Idempotency-Key header written as the UTF-8 bytes of `key` (fetch and
 * Headers refuse anything but Latin-1, a client in another language need not). Returns status and body.
 */
const postWithRawKey = (key: string, body: unknown) =>
  new Promise<{ status: number; body: any }>((resolve, reject) => {
    const payload = Buffer.from(JSON.stringify(body))
    const head = Buffer.concat([
      Buffer.from(`POST /jobs HTTP/1.1\r\nHost: ${baseUrl.host}\r\nContent-Type: application/json\r\n`),
      Buffer.from(`Content-Length: ${payload.length}\r\nConnection: close\r\nIdempotency-Key: `),
      Buffer.from(key, "utf8"),
      Buffer.from("\r\n\r\n")
    ])
    const socket = connect(Number(baseUrl.port), baseUrl.hostname, () =>
      socket.write(Buffer.concat([head, payload]))
    )
    const chunks: Array<Buffer> = []
    // the server closes the connection after its answer (Connection: close); a half-close of ours could
    // read as the client going away before a slower answer
    socket.on("data", (chunk: Buffer) => chunks.push(chunk))
    socket.on("error", reject)
    socket.on("close", () => {
      const text = Buffer.concat(chunks).toString("utf8")
      const status = Number(text.split(" ")[1])
      const start = text.indexOf("{")
      resolve({
        status,
        body: start === -1 ? undefined : JSON.parse(text.slice(start, text.lastIndexOf("}") + 1))
      })
    })
  })

describe("idempotency keys are printable ASCII, in the header and the body alike", () => {
  const notAscii = "Expected printable ASCII (0x20-0x7E), not starting or ending with a space"

  it("a UTF-8 header key is a 422 naming the header, not a garbled key that makes a second job", async () => {
    const queue = uniqueQueue()
    for (const key of ["заказ-42", "café", "order-\u{1F600}", "ключ".repeat(60)]) {
      const { status, body } = await postWithRawKey(key, { kind: "noop", payload: {}, queue })
      expect({ key, status }).toEqual({ key, status: 422 })
      expect(body.type).toBe("urn:jobq:problem:validation-failed")
      expect(body.errors.map((issue: { path: Array<string> }) => issue.path)).toContainEqual([
        "headers",
        "idempotency-key"
      ])
    }
    expect(await jobsIn(queue)).toHaveLength(0)
  })

  it("the same keys in the body are refused by the same rule", async () => {
    const queue = uniqueQueue()
    for (const key of ["заказ-42", "café", "tab\there", " leading", "trailing ", "", "x".repeat(256)]) {
      const problem = await expectProblem(
        await postJson("/jobs", { kind: "noop", payload: {}, queue, idempotencyKey: key }),
        422,
        "validation-failed"
      )
      expect(problem.errors.map((issue: { path: Array<string> }) => issue.path.join("."))).toContain(
        "body.idempotencyKey"
      )
    }
    const [issue] = (
      await json(await postJson("/jobs", { kind: "noop", payload: {}, queue, idempotencyKey: "café" }))
    ).errors
    expect(issue.message).toBe(notAscii)
    expect(await jobsIn(queue)).toHaveLength(0)
  })

  it("an ASCII key of 255 characters, spaces inside, is one key whether sent in the header or the body", async () => {
    const queue = uniqueQueue()
    const key = `a b~!${"x".repeat(250)}`
    expect(key).toHaveLength(255)
    const byHeader = await postWithRawKey(key, { kind: "noop", payload: {}, queue })
    expect(byHeader.status).toBe(201)
    expect(byHeader.body.idempotencyKey).toBe(key)
    const byBody = await postJson("/jobs", { kind: "noop", payload: {}, queue, idempotencyKey: key })
    expect(byBody.status).toBe(200)
    expect((await json(byBody)).id).toBe(byHeader.body.id)
    expect(await jobsIn(queue)).toHaveLength(1)
  })
})
