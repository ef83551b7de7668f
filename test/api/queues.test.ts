/**
 * The queues endpoints over HTTP: listing and counts, pause and resume (idempotent, and saying so), limits
 * (strictly checked), names (the enqueue rule), unknown queues, auth.
 */
import { describe, expect, it } from "bun:test"
import { JobRepo } from "../../src/queue/JobRepo.ts"
import { expectProblem, json, setupApiTests, webHandler } from "../support/api.ts"

const api = await setupApiTests(import.meta.file)

const post = (path: string, body?: unknown) =>
  body === undefined ? api.request(path, { method: "POST" }) : api.postJson(path, body)
const patch = (path: string, body: unknown) =>
  api.request(path, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body)
  })
const enqueue = async (queue: string, count = 1) => {
  for (let i = 0; i < count; i++) {
    const response = await api.postJson("/jobs", { kind: "noop", payload: {}, queue })
    expect(response.status).toBe(201)
  }
}

describe("GET /queues and /queues/{name}", () => {
  it("a queue exists once a job was enqueued to it, with its counts by status and its oldest ready job's age", async () => {
    await enqueue("listed", 3)
    await api.run(JobRepo.use((repo) => repo.claim("worker-x", 1, 30_000, ["listed"])))
    const response = await api.request("/queues/listed")
    expect(response.status).toBe(200)
    const queue = await json(response)
    expect(queue).toMatchObject({
      name: "listed",
      paused: false,
      pause: null,
      concurrencyLimit: null,
      rateLimit: null,
      counts: {
        queued: 2,
        retrying: 0,
        running: 1,
        blocked: 0,
        succeeded: null,
        failed_permanent: null,
        cancelled: null
      }
    })
    expect(queue.oldestReadyAgeSeconds).toBeGreaterThanOrEqual(0)
    const list = await json(await api.request("/queues"))
    expect(list.queues.map((q: { name: string }) => q.name)).toContain("listed")
    expect(list.nextCursor).toBeNull()
  })

  it("pages in name order with a cursor", async () => {
    for (const name of ["page-a", "page-b", "page-c"]) await enqueue(name)
    const first = await json(await api.request("/queues?limit=2"))
    expect(first.queues).toHaveLength(2)
    expect(first.nextCursor).toBe(first.queues[1].name)
    const rest = await json(await api.request(`/queues?limit=500&cursor=${first.nextCursor}`))
    const names = [...first.queues, ...rest.queues].map((q: { name: string }) => q.name)
    expect(names).toEqual([...names].sort())
    expect(new Set(names).size).toBe(names.length)
    await expectProblem(await api.request("/queues?limit=0"), 422, "validation-failed")
    await expectProblem(await api.request("/queues?limit=501"), 422, "validation-failed")
  })

  it("an unknown queue is 404; a name that breaks the enqueue rule is 422, also past the router's limit", async () => {
    const unknown = await expectProblem(await api.request("/queues/never-used"), 404, "queue-not-found")
    expect(unknown.queue).toBe("never-used")
    const bad = await expectProblem(await api.request("/queues/has%20space"), 422, "validation-failed")
    expect(bad.errors[0].path).toEqual(["path", "name"])
    await expectProblem(await api.request(`/queues/${"x".repeat(129)}`), 422, "validation-failed")
    await expectProblem(await post(`/queues/${"x".repeat(129)}/pause`), 422, "validation-failed")
    // 128 characters is a valid name
    const long = "y".repeat(128)
    expect((await post(`/queues/${long}/pause`)).status).toBe(200)
    expect((await json(await api.request(`/queues/${long}`))).paused).toBe(true)
  })
})

describe("POST /queues/{name}/pause and /resume", () => {
  it("pausing a queue nobody used yet creates it paused; the body is optional", async () => {
    const response = await post("/queues/pre-paused/pause")
    expect(response.status).toBe(200)
    const body = await json(response)
    expect(body.outcome).toBe("paused")
    expect(body.queue).toMatchObject({ name: "pre-paused", paused: true, pause: { by: null, reason: null } })
  })

  it("a second pause keeps the first pause and reason unless a new reason is given, and says so", async () => {
    const first = await json(await post("/queues/twice/pause", { reason: "incident 1", by: "alice" }))
    expect(first.outcome).toBe("paused")
    const again = await json(await post("/queues/twice/pause", {}))
    expect(again.outcome).toBe("already_paused")
    expect(again.message).toContain("unchanged")
    expect(again.queue.pause).toEqual(first.queue.pause)
    const replaced = await json(await post("/queues/twice/pause", { reason: "incident 2", by: "bob" }))
    expect(replaced.outcome).toBe("already_paused")
    expect(replaced.message).toContain("reason replaced")
    expect(replaced.queue.pause).toEqual({ at: first.queue.pause.at, by: "bob", reason: "incident 2" })
  })

  it("resume is idempotent and says whether it changed anything", async () => {
    await post("/queues/resumable/pause", { reason: "r" })
    const resumed = await json(await post("/queues/resumable/resume"))
    expect(resumed.outcome).toBe("resumed")
    expect(resumed.queue.pause).toBeNull()
    const again = await json(await post("/queues/resumable/resume"))
    expect(again.outcome).toBe("not_paused")
  })

  it("enqueueing into a paused queue still works", async () => {
    await post("/queues/paused-enqueue/pause")
    await enqueue("paused-enqueue", 2)
    expect((await json(await api.request("/queues/paused-enqueue"))).counts.queued).toBe(2)
  })

  it("a pause body with unknown keys, the wrong types or over-long texts is 422; not JSON is 400", async () => {
    const extra = await expectProblem(
      await post("/queues/strict/pause", { reason: "x", until: "later" }),
      422,
      "validation-failed"
    )
    expect(extra.errors.map((e: { path: Array<string> }) => e.path)).toEqual([["body", "until"]])
    await expectProblem(await post("/queues/strict/pause", { reason: 42 }), 422, "validation-failed")
    await expectProblem(
      await post("/queues/strict/pause", { reason: "x".repeat(1001) }),
      422,
      "validation-failed"
    )
    await expectProblem(await post("/queues/strict/pause", { reason: "" }), 422, "validation-failed")
    await expectProblem(await post("/queues/strict/pause", "{not json"), 400, "malformed-json")
    await expectProblem(await api.request("/queues/strict"), 404, "queue-not-found")
  })
})

describe("PATCH /queues/{name}", () => {
  it("sets, keeps and removes limits; a field left out keeps its value", async () => {
    const set = await patch("/queues/limited", { concurrencyLimit: 8, rateLimit: { max: 1000, per: 1000 } })
    expect(set.status).toBe(200)
    expect(await json(set)).toMatchObject({ concurrencyLimit: 8, rateLimit: { max: 1000, per: 1000 } })
    const kept = await json(await patch("/queues/limited", { concurrencyLimit: 2 }))
    expect([kept.concurrencyLimit, kept.rateLimit]).toEqual([2, { max: 1000, per: 1000 }])
    const removed = await json(await patch("/queues/limited", { rateLimit: null }))
    expect([removed.concurrencyLimit, removed.rateLimit]).toEqual([2, null])
    const none = await json(await patch("/queues/limited", { concurrencyLimit: null }))
    expect(none.concurrencyLimit).toBeNull()
  })

  it("anything but an integer >= 1 or null, a { max, per } or null, is 422 with every issue", async () => {
    const cases: Array<[unknown, Array<Array<string>>]> = [
      [{ concurrencyLimit: 0 }, [["body", "concurrencyLimit"]]],
      [{ concurrencyLimit: 1.5 }, [["body", "concurrencyLimit"]]],
      [{ concurrencyLimit: "8" }, [["body", "concurrencyLimit"]]],
      [{ concurrencyLimit: 1_000_001 }, [["body", "concurrencyLimit"]]],
      [{ rateLimit: { max: 0, per: 1000 } }, [["body", "rateLimit", "max"]]],
      [{ rateLimit: { max: 10 } }, [["body", "rateLimit", "per"]]],
      [{ rateLimit: { max: 10, per: 0 } }, [["body", "rateLimit", "per"]]],
      [{ rateLimit: { max: 10, per: 86_400_001 } }, [["body", "rateLimit", "per"]]],
      [{ rateLimit: { max: 10, per: 1000, burst: 5 } }, [["body", "rateLimit", "burst"]]],
      [{ concurrency: 5 }, [["body", "concurrency"]]],
      [{}, [["body"]]],
      [[], [["body"]]]
    ]
    for (const [body, paths] of cases) {
      const problem = await expectProblem(await patch("/queues/bad-limits", body), 422, "validation-failed")
      expect([JSON.stringify(body), problem.errors.map((e: { path: Array<string> }) => e.path)]).toEqual([
        JSON.stringify(body),
        paths
      ])
    }
    // nothing was created by a refused change
    await expectProblem(await api.request("/queues/bad-limits"), 404, "queue-not-found")
  })
})

describe("auth", () => {
  it("every queues endpoint needs the token when API_TOKENS is set", async () => {
    const guarded = webHandler(api.db.url, { tokens: ["secret"] })
    for (const [method, path] of [
      ["GET", "/queues"],
      ["GET", "/queues/x"],
      ["POST", "/queues/x/pause"],
      ["POST", "/queues/x/resume"],
      ["PATCH", "/queues/x"]
    ] as const) {
      const response = await guarded(new Request(`http://api.test${path}`, { method }))
      expect(`${method} ${path} ${response.status}`).toBe(`${method} ${path} 401`)
    }
    const ok = await guarded(
      new Request("http://api.test/queues", { headers: { authorization: "Bearer secret" } })
    )
    expect(ok.status).toBe(200)
  })
})
