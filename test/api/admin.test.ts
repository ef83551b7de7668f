/**
 * The dashboard's admin endpoints over HTTP: read-only tokens (every read, no write, 403 from the server),
 * list filters (time ranges, payload containment and its bounded scan), delete, bulk actions in batches,
 * and the shared statistics.
 */
import { describe, expect, it } from "bun:test"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { JobRepo } from "../../src/queue/JobRepo.ts"
import { json, setupApiTests } from "../support/api.ts"

const api = await setupApiTests(import.meta.file, {
  tokens: ["full-token"],
  readTokens: ["read-token"],
  // long: the first computation is the one every later caller in this file shares
  statsInterval: "1 hour"
})
const as = (token: string) => ({ authorization: `Bearer ${token}` })
const full = as("full-token")
const read = as("read-token")

const enqueue = async (body: Record<string, unknown>) => {
  const response = await api.postJson("/jobs", { kind: "noop", payload: {}, ...body }, full)
  expect(response.status).toBe(201)
  return (await json(response)) as { id: string }
}
const list = async (query: string, headers = full) => {
  const response = await api.request(`/jobs?${query}`, { headers })
  expect(response.status).toBe(200)
  return (await json(response)) as { jobs: Array<{ id: string; status: string }>; nextCursor: string | null }
}
const bulk = (body: unknown, headers = full) =>
  api.request("/jobs/bulk", {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body)
  })

describe("GET /stats", () => {
  it("counts by status per queue and the oldest ready job's age, shared across callers within the interval", async () => {
    await enqueue({ queue: "st" })
    await enqueue({ queue: "st" })
    const first = (await json(await api.request("/stats", { headers: full }))) as {
      computedAt: string
      queues: Array<{ queue: string; counts: { queued: number }; oldestReadyAgeMs: number | null }>
    }
    const queue = first.queues.find((q) => q.queue === "st")
    expect(queue?.counts.queued).toBe(2)
    expect(queue?.oldestReadyAgeMs).toBeGreaterThanOrEqual(0)
    await enqueue({ queue: "st" })
    const again = (await json(await api.request("/stats", { headers: read }))) as typeof first
    // the same computation, not a new one: within API_STATS_INTERVAL every caller shares it
    expect(again.computedAt).toBe(first.computedAt)
    expect(again.queues.find((q) => q.queue === "st")?.counts.queued).toBe(2)
  })
})

describe("read-only tokens (API_READ_TOKENS)", () => {
  it("read everything; every mutating request is answered 403 and changes nothing", async () => {
    const job = await enqueue({ queue: "ro" })
    expect((await api.request(`/jobs/${job.id}`, { headers: read })).status).toBe(200)
    expect((await api.request("/queues", { headers: read })).status).toBe(200)
    expect((await api.request("/stats", { headers: read })).status).toBe(200)
    expect((await api.request("/workers", { headers: read })).status).toBe(200)
    const attempts = [
      api.postJson("/jobs", { kind: "noop", payload: {} }, read),
      api.request(`/jobs/${job.id}/cancel`, { method: "POST", headers: read }),
      api.request(`/jobs/${job.id}`, { method: "DELETE", headers: read }),
      api.request("/queues/ro/pause", { method: "POST", headers: read }),
      bulk({ action: "cancel", filter: { queue: "ro" } }, read)
    ]
    for (const response of await Promise.all(attempts)) {
      expect(response.status).toBe(403)
      expect(((await json(response)) as { type: string }).type).toBe("urn:jobq:problem:forbidden")
    }
    const after = (await json(await api.request(`/jobs/${job.id}`, { headers: full }))) as { status: string }
    expect(after.status).toBe("queued")
    expect((await api.request("/stats")).status).toBe(401)
    expect((await api.request("/stats", { headers: as("wrong") })).status).toBe(401)
  })

  it("the dashboard's shell loads without a token; its data does not", async () => {
    const shell = await api.request("/ui/")
    expect(shell.status).toBe(200)
    expect(shell.headers.get("content-type")).toContain("text/html")
    const redirect = await api.request("/ui")
    expect(redirect.status).toBe(302)
    expect(redirect.headers.get("location")).toBe("ui/")
    expect((await api.request("/ui/app.js")).status).toBe(200)
    expect((await api.request("/ui/secret.txt")).status).toBe(404)
    expect((await api.request("/jobs")).status).toBe(401)
  })
})

describe("GET /jobs filters", () => {
  it("payload containment; time ranges bound created and finished", async () => {
    const before = new Date(Date.now() - 1000).toISOString()
    const a = await enqueue({ queue: "pf", kind: "sleep", payload: { ms: 42 } })
    await enqueue({ queue: "pf", kind: "sleep", payload: { ms: 43 } })
    const found = await list(`queue=pf&payload=${encodeURIComponent('{"ms":42}')}`)
    expect(found.jobs.map((j) => j.id)).toEqual([a.id])
    expect((await list(`queue=pf&createdAfter=${encodeURIComponent(before)}`)).jobs.length).toBe(2)
    expect((await list(`queue=pf&createdBefore=${encodeURIComponent(before)}`)).jobs.length).toBe(0)
    expect((await list(`queue=pf&finishedAfter=${encodeURIComponent(before)}`)).jobs.length).toBe(0)
    const bad = await api.request(`/jobs?payload=${encodeURIComponent("[1]")}`, { headers: full })
    expect(bad.status).toBe(422)
    const notJson = await api.request("/jobs?payload=%7Bcustomer", { headers: full })
    expect(notJson.status).toBe(422)
  })
})

describe("the payload filter's bound", () => {
  it("examines at most 10,000 jobs a page: past them, a short page whose cursor goes on from the window's end", async () => {
    // 10,050 jobs that do not match, then one that does
    await api.run(
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) => sql`
          INSERT INTO jobs (queue, kind, payload)
          SELECT 'window', 'sleep', jsonb_build_object('ms', 1) FROM generate_series(1, 10050)`
      )
    )
    const match = await enqueue({ queue: "window", kind: "sleep", payload: { ms: 99 } })
    const filter = `queue=window&payload=${encodeURIComponent('{"ms":99}')}`
    const first = await list(filter)
    expect(first.jobs).toEqual([])
    expect(first.nextCursor).not.toBeNull()
    const second = await list(`${filter}&cursor=${first.nextCursor}`)
    expect(second.jobs.map((j) => j.id)).toEqual([match.id])
    expect(second.nextCursor).toBeNull()
    // a bulk action walks the same windows
    const batch = await bulk({ action: "cancel", filter: { queue: "window", payload: '{"ms":99}' } })
    const answer = (await json(batch)) as { matched: number; nextCursor: string | null; done: boolean }
    expect(answer).toMatchObject({ matched: 0, done: false })
    const next = (await json(
      await bulk({
        action: "cancel",
        filter: { queue: "window", payload: '{"ms":99}' },
        cursor: answer.nextCursor
      })
    )) as { matched: number; acted: number; done: boolean }
    expect(next).toMatchObject({ matched: 1, acted: 1, done: true })
  })
})

describe("DELETE /jobs/{id}", () => {
  it("deletes a job that is not running; a running one is a 409; an unknown one a 404", async () => {
    const job = await enqueue({ queue: "del" })
    const deleted = await api.request(`/jobs/${job.id}`, { method: "DELETE", headers: full })
    expect(deleted.status).toBe(200)
    expect(await json(deleted)).toEqual({ deleted: job.id })
    expect((await api.request(`/jobs/${job.id}`, { headers: full })).status).toBe(404)
    expect((await api.request(`/jobs/${job.id}`, { method: "DELETE", headers: full })).status).toBe(404)
    const running = await enqueue({ queue: "del-run" })
    await api.run(JobRepo.use((repo) => repo.claim("worker-x", 1, 30_000, ["del-run"])))
    const conflict = await api.request(`/jobs/${running.id}`, { method: "DELETE", headers: full })
    expect(conflict.status).toBe(409)
  })
})

describe("POST /jobs/{id}/run-now", () => {
  it("makes a delayed job due now; a job that does not wait is a 409", async () => {
    const delayed = await enqueue({ queue: "later", delayMs: 3_600_000 })
    const response = await api.request(`/jobs/${delayed.id}/run-now`, { method: "POST", headers: full })
    expect(response.status).toBe(200)
    const job = (await json(response)) as { runAt: string; status: string; attempts: number }
    expect(new Date(job.runAt).getTime()).toBeLessThanOrEqual(Date.now() + 1000)
    expect({ status: job.status, attempts: job.attempts }).toEqual({ status: "queued", attempts: 0 })
    await api.request(`/jobs/${delayed.id}/cancel`, { method: "POST", headers: full })
    const again = await api.request(`/jobs/${delayed.id}/run-now`, { method: "POST", headers: full })
    expect(again.status).toBe(409)
    const unknown = await api.request("/jobs/01a221cf-db80-7733-b104-161470ea05be/run-now", {
      method: "POST",
      headers: full
    })
    expect(unknown.status).toBe(404)
  })
})

describe("POST /jobs/bulk", () => {
  it("cancels every job a filter matches, batch by batch, then retries and deletes them", async () => {
    const response = await api.postJson(
      "/jobs/batch",
      { jobs: Array.from({ length: 250 }, (_, i) => ({ kind: "sleep", queue: "bulk", payload: { ms: i } })) },
      full
    )
    expect(response.status).toBe(200)
    const run = async (action: string, filter: Record<string, unknown>) => {
      let cursor: string | undefined
      let acted = 0
      let batches = 0
      for (;;) {
        const r = await bulk({ action, filter, batchSize: 100, ...(cursor === undefined ? {} : { cursor }) })
        expect(r.status).toBe(200)
        const batch = (await json(r)) as {
          acted: number
          matched: number
          nextCursor: string | null
          done: boolean
        }
        acted += batch.acted
        batches++
        if (batch.done) return { acted, batches }
        cursor = batch.nextCursor!
      }
    }
    expect(await run("cancel", { queue: "bulk" })).toEqual({ acted: 250, batches: 3 })
    expect((await list("queue=bulk&status=cancelled&limit=500")).jobs.length).toBe(250)
    expect(await run("cancel", { queue: "bulk" })).toEqual({ acted: 0, batches: 3 })
    expect(await run("retry", { queue: "bulk", payload: '{"ms":7}' })).toEqual({ acted: 1, batches: 1 })
    expect((await list("queue=bulk&status=queued")).jobs.length).toBe(1)
    expect(await run("delete", { queue: "bulk", status: "cancelled" })).toEqual({ acted: 249, batches: 3 })
    expect((await list("queue=bulk&limit=500")).jobs.length).toBe(1)
    const invalid = await bulk({ action: "explode", filter: {}, extra: 1 })
    expect(invalid.status).toBe(422)
  })

  it("acts on a selection by ids; a running job's cancel is a request its worker carries out", async () => {
    const claimed = await enqueue({ queue: "bulk-ids" })
    const waiting = await enqueue({ queue: "bulk-ids" })
    const untouched = await enqueue({ queue: "bulk-ids" })
    // the claim takes the oldest: `claimed` runs
    await api.run(JobRepo.use((repo) => repo.claim("worker-x", 1, 30_000, ["bulk-ids"])))
    const r = await bulk({ action: "cancel", filter: { ids: [claimed.id, waiting.id] } })
    expect(await json(r)).toMatchObject({ matched: 2, acted: 2, skipped: 0, done: true })
    const states = await Promise.all(
      [claimed, waiting, untouched].map(
        async (j) =>
          (await json(await api.request(`/jobs/${j.id}`, { headers: full }))) as {
            status: string
            cancelRequestedAt: string | null
          }
      )
    )
    expect(states.map((s) => [s.status, s.cancelRequestedAt !== null])).toEqual([
      ["running", true],
      ["cancelled", true],
      ["queued", false]
    ])
  })
})
