/**
 * Defects a hostile client found (issue #21's last stop), one regression test each: bad input answered with
 * a 4xx naming it (never a 500, never an answer that names a job that does not exist), and nothing written.
 */
import { afterAll, describe, expect, it } from "bun:test"
import { SQL } from "bun"
import { expectProblem, json, serve, setupApiTests } from "../support/api.ts"
import { waitFor } from "../support/runtime.ts"

const { request, postJson, db, handler } = await setupApiTests(import.meta.file)
const pg = new SQL({ url: db.url, max: 1 })
afterAll(() => pg.close())

const count = async (query: string) => Number((await pg.unsafe(query))[0].n)

describe("a payload filter with a number Postgres cannot read is a 422 (was a 500, or a bulk operation that failed)", () => {
  const outOfRange = [
    '{"a":1e999999}',
    '{"a":1e-999999}',
    '{"a":1e131072}',
    '{"a":1e-16384}',
    '{"a":{"b":[1,2.5e-16383]}}'
  ]
  const inRange = ['{"a":1e131071}', '{"a":1e-16383}', '{"a":"1e999999"}', '{"1e999999":0}', '{"a":-0.5E+3}']

  it("GET /jobs, POST /jobs/bulk and POST /bulk-operations refuse it before anything runs", async () => {
    for (const filter of outOfRange) {
      const listed = await expectProblem(
        await request(`/jobs?payload=${encodeURIComponent(filter)}`),
        422,
        "validation-failed"
      )
      expect(listed.errors[0].path).toEqual(["query", "payload"])
      expect(listed.errors[0].message).toContain("out of range")
      for (const path of ["/jobs/bulk", "/bulk-operations"]) {
        const refused = await expectProblem(
          await postJson(path, { action: "cancel", filter: { payload: filter } }),
          422,
          "validation-failed"
        )
        expect(refused.errors[0].path).toEqual(["body", "filter", "payload"])
      }
    }
    // no operation was written (it had retried for ~15 s, then failed with a stack trace for its readers)
    expect(await count("SELECT count(*) AS n FROM bulk_operations")).toBe(0)
  })

  it("numbers at the edge of the range, and number-like text in strings and keys, are filters as before", async () => {
    for (const filter of inRange) {
      const response = await request(`/jobs?payload=${encodeURIComponent(filter)}`)
      expect(response.status).toBe(200)
      expect((await json(response)).jobs).toEqual([])
    }
  })
})

describe("a batch with one idempotency key on two different items is a 422 naming them (was a 409 naming a job the rollback undid)", () => {
  it("refuses the batch and enqueues nothing", async () => {
    const refused = await expectProblem(
      await postJson("/jobs/batch", {
        jobs: [
          { kind: "sleep", payload: { ms: 1 }, idempotencyKey: "dupe-in-batch" },
          { kind: "noop", payload: {} },
          { kind: "sleep", payload: { ms: 2 }, idempotencyKey: "dupe-in-batch" }
        ]
      }),
      422,
      "validation-failed"
    )
    expect(refused.errors[0].path).toEqual(["body", "jobs", 2, "idempotencyKey"])
    expect(refused.errors[0].message).toContain("item 0")
    expect(refused.jobId).toBeUndefined()
    expect(await count("SELECT count(*) AS n FROM jobs")).toBe(0)
  })

  it("the same request twice in one batch is one job, answered for both", async () => {
    const response = await postJson("/jobs/batch", {
      jobs: [
        { kind: "sleep", payload: { ms: 3 }, idempotencyKey: "same-in-batch" },
        { kind: "sleep", payload: { ms: 3 }, idempotencyKey: "same-in-batch" }
      ]
    })
    expect(response.status).toBe(200)
    const { jobs } = await json(response)
    expect(jobs[1].id).toBe(jobs[0].id)
    expect([jobs[0].created, jobs[1].created]).toEqual([true, false])
    expect(await count("SELECT count(*) AS n FROM jobs WHERE idempotency_key = 'same-in-batch'")).toBe(1)
  })
})

describe("a body that is not UTF-8 is a 400 (was read with U+FFFD in place of its bytes, and stored)", () => {
  const raw = (path: string, bytes: Uint8Array<ArrayBuffer>, headers: Record<string, string> = {}) =>
    request(path, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: bytes
    })
  const body = (inner: Array<number>) =>
    new Uint8Array([
      ...new TextEncoder().encode('{"kind":"cpu_hash","payload":{"seed":"'),
      ...inner,
      ...new TextEncoder().encode('","rounds":1}}')
    ])

  it("refuses invalid bytes and an encoded lone surrogate, and stores nothing; two such bodies do not replay each other", async () => {
    for (const inner of [[0xff], [0xfe], [0xed, 0xa0, 0x80], [0xc3]]) {
      const refused = await expectProblem(
        await raw("/jobs", body(inner), { "idempotency-key": "utf8-key" }),
        400,
        "malformed-json"
      )
      expect(refused.detail).toContain("UTF-8")
    }
    const batch = new Uint8Array([
      ...new TextEncoder().encode('{"jobs":['),
      ...body([0xff]),
      ...new TextEncoder().encode("]}")
    ])
    await expectProblem(await raw("/jobs/batch", batch), 400, "malformed-json")
    expect(await count("SELECT count(*) AS n FROM jobs WHERE idempotency_key = 'utf8-key'")).toBe(0)
    expect(await count("SELECT count(*) AS n FROM jobs WHERE kind = 'cpu_hash'")).toBe(0)
    // valid UTF-8 beyond ASCII is a payload like any other
    const fine = await raw("/jobs", body([...new TextEncoder().encode("é🙂")]))
    expect(fine.status).toBe(201)
    expect((await json(fine)).payload.seed).toBe("é🙂")
  })
})

describe("a queue name of dots alone is refused (was made, and could never be read, paused or resumed)", () => {
  it("refuses . and .. (and ...) where a queue is named; dotted names that are not only dots are fine", async () => {
    for (const queue of [".", "..", "..."]) {
      const refused = await expectProblem(
        await postJson("/jobs", { kind: "noop", payload: {}, queue }),
        422,
        "validation-failed"
      )
      expect(refused.errors[0].path).toEqual(["body", "queue"])
      await expectProblem(
        await postJson("/schedules", {
          name: `dots-${queue.length}`,
          kind: "noop",
          cron: "* * * * *",
          queue
        }),
        422,
        "validation-failed"
      )
    }
    expect(await count("SELECT count(*) AS n FROM queues WHERE name ~ '^[.]+$'")).toBe(0)
    for (const queue of [".hidden", "a..b", "v1.2", "..x"]) {
      expect((await postJson("/jobs", { kind: "noop", payload: {}, queue })).status).toBe(201)
      expect((await request(`/queues/${queue}`)).status).toBe(200)
    }
  })
})

describe("a request the client abandons is counted as 499, not as a server error", () => {
  it("POST /jobs?wait= cut short by the client", async () => {
    const base = serve(handler)
    const statusCount = async (status: string) => {
      const text = await (await request("/metrics")).text()
      const line = text
        .split("\n")
        .find((l) => l.startsWith(`jobq_http_requests_total{route="/jobs",method="POST",status="${status}"`))
      return Number(line?.split(" ").at(-1) ?? 0)
    }
    const before = { aborted: await statusCount("499"), errors: await statusCount("500") }
    const cut = fetch(`${base}/jobs?wait=5s`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ kind: "sleep", payload: { ms: 1 }, queue: "abandoned" }),
      signal: AbortSignal.timeout(300)
    })
    await expect(cut).rejects.toThrow()
    await waitFor("the abandoned request to be counted", async () =>
      (await statusCount("499")) === before.aborted + 1 ? true : undefined
    )
    expect(await statusCount("500")).toBe(before.errors)
  })
})

describe("a queue or schedule name that is not valid percent-encoding is named as such", () => {
  it("GET /queues/%FF and /schedules/% say what is wrong (they said the name was too long)", async () => {
    for (const path of ["/queues/%FF", "/queues/%", "/schedules/%E0%A4", "/schedules/%"]) {
      const refused = await expectProblem(await request(path), 422, "validation-failed")
      expect(refused.errors[0].path).toEqual(["path", "name"])
      expect(refused.errors[0].message).toContain("percent-encoded")
    }
    const long = await expectProblem(await request(`/queues/${"q".repeat(129)}`), 422, "validation-failed")
    expect(long.errors[0].message).toContain("at most 128 characters")
  })
})

describe("a flow job's payload issue is named under its payload", () => {
  it("POST /flows with a NUL in a job's payload names body.jobs[i].payload.seed (it named body.jobs[i].seed)", async () => {
    const refused = await expectProblem(
      await postJson("/flows", {
        jobs: [
          { name: "a", kind: "noop", payload: {} },
          { name: "b", kind: "cpu_hash", payload: { seed: "x\u0000y", rounds: 1 }, dependsOn: ["a"] }
        ]
      }),
      422,
      "validation-failed"
    )
    expect(refused.errors[0].path).toEqual(["body", "jobs", 1, "payload", "seed"])
  })
})

describe("a body without a content type is read as JSON, so it is checked as UTF-8 too", () => {
  it("POST /jobs with no Content-Type and invalid UTF-8 is a 400, and nothing is stored", async () => {
    const bytes = new Uint8Array([
      ...new TextEncoder().encode('{"kind":"cpu_hash","payload":{"seed":"no-type-'),
      0xff,
      ...new TextEncoder().encode('","rounds":1}}')
    ])
    const response = await request("/jobs", { method: "POST", body: bytes })
    expect(response.headers.get("content-type") ?? "").toStartWith("application/problem+json")
    expect(response.status).toBe(400)
    expect(await count("SELECT count(*) AS n FROM jobs WHERE payload->>'seed' LIKE 'no-type-%'")).toBe(0)
  })
})
