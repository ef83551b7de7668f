/**
 * Property-based fuzzing of the API through its web handler, requests generated from its own OpenAPI
 * document (requests.ts). For every request: never a 5xx (the database is up, so not even a 503), every
 * error in the documented problem shape with a status the operation documents, and afterwards the database
 * holds exactly the jobs that were accepted, stored verbatim (SQL-looking strings included; a canary table
 * such strings try to drop is still there). Seeded: FUZZ_SEED reproduces a run; the count is by profile.
 */
import { describe, expect, it } from "bun:test"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import fc from "fast-check"
import { setupApiTests } from "../support/api.ts"
import { pick, profile, report } from "./profile.ts"
import { type FuzzRequest, operationsOf, requestFor, type Spec, violation } from "./requests.ts"

const api = await setupApiTests(import.meta.file)
const query = <A extends object>(text: string) =>
  api.run(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe<A>(text)))
await query("CREATE TABLE fuzz_canary (id int PRIMARY KEY)")
await query("INSERT INTO fuzz_canary VALUES (1)")

const spec: Spec = await (await api.request("/api-docs/openapi.json")).json()
const operations = operationsOf(spec)
const seed = Number(process.env.FUZZ_SEED ?? 20261128)
const runs = pick(500, 10_000)

/** Jobs the API said it created, with what was sent for them. */
const accepted = new Map<string, { queue: string; payload?: unknown; idempotencyKey: string | null } | null>()
const statuses = new Map<number, number>()
let failures = 0

/** The documented schema of this answer, when the request reached a documented operation. */
const documented = (request: FuzzRequest, status: number) => {
  const templated = new RegExp(`^${request.op.path.replace("{id}", "[^/?]+")}(\\?|$)`)
  // what the server sees: the URL parser resolves dot segments and reads "\\" as "/"
  const url = new URL(`http://api.test${request.path}`)
  if (request.method !== request.op.method || !templated.test(url.pathname)) return undefined
  return {
    responses: request.op.operation.responses as Record<string, any>,
    response: request.op.operation.responses[status]
  }
}

const send = async (request: FuzzRequest) => {
  const response = await api.handler(
    new Request(`http://api.test${request.path}`, {
      method: request.method,
      headers: request.headers,
      ...(request.body === undefined ? {} : { body: request.body as BodyInit })
    })
  )
  // an event stream (GET /events) never ends by itself: its headers and status are the answer
  const streaming = (response.headers.get("content-type") ?? "").startsWith("text/event-stream")
  // (a HEAD has no body at all)
  const text = streaming
    ? await (response.body?.cancel() ?? Promise.resolve()).then(() => "")
    : await response.text()
  statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1)
  const where = `${request.method} ${request.path.slice(0, 120)}`
  if (process.env.FUZZ_DEBUG && response.status === 422)
    console.log(where, String(request.body).slice(0, 300), text.slice(0, 300))
  if (response.status >= 500) throw new Error(`${where} answered ${response.status}: ${text.slice(0, 500)}`)
  const doc = documented(request, response.status)
  if (doc !== undefined && doc.response === undefined) {
    throw new Error(
      `${where} answered ${response.status}, which the operation does not document (${Object.keys(doc.responses)})`
    )
  }
  const json = /json/.test(response.headers.get("content-type") ?? "")
  if (response.status >= 400 && request.method !== "HEAD" && !json) {
    throw new Error(`${where}: ${response.status} without a problem body: ${text.slice(0, 200)}`)
  }
  if (request.method === "HEAD" || !json) return
  const body = JSON.parse(text)
  if (response.status >= 400) {
    expect(response.headers.get("content-type")).toStartWith("application/problem+json")
    expect(body.type).toStartWith("urn:jobq:problem:")
    expect(typeof body.title).toBe("string")
    expect(body.status).toBe(response.status)
    expect(typeof body.detail).toBe("string")
    const schema = doc?.response?.content?.["application/problem+json"]?.schema
    if (schema !== undefined) {
      const broken = violation(spec, schema, body)
      if (broken !== undefined)
        throw new Error(`${where}: ${response.status} body breaks its schema: ${broken}`)
    }
    return
  }
  const schema = doc?.response?.content?.["application/json"]?.schema
  if (schema !== undefined) {
    const broken = violation(spec, schema, body)
    if (broken !== undefined)
      throw new Error(`${where}: ${response.status} body breaks its schema: ${broken}`)
  }
  const sent = request.json as Record<string, any> | undefined
  // as the server reads it: a header value loses its leading and trailing whitespace in transit
  const keyFromHeader = new Headers(request.headers).get("idempotency-key") ?? undefined
  if (request.op.path === "/jobs" && request.method === "POST") {
    if (response.status === 201) {
      accepted.set(
        body.id,
        sent === undefined || typeof sent !== "object" || sent === null
          ? null
          : {
              queue: sent.queue ?? "default",
              payload: body.payload,
              idempotencyKey: keyFromHeader ?? sent.idempotencyKey ?? null
            }
      )
    } else if (!accepted.has(body.id))
      throw new Error(`${where}: a replay of a job never created: ${body.id}`)
  }
  // a flow and a schedule's manual run create jobs too: their ids are in the answer
  if (request.op.path === "/flows" && request.method === "POST" && response.status === 201) {
    for (const job of body.jobs as Array<{ id: string; queue: string }>)
      accepted.set(job.id, { queue: job.queue, idempotencyKey: null })
  }
  if (request.op.path === "/schedules/{name}/trigger" && response.status === 201)
    accepted.set(body.jobId, null)
  if (request.op.path === "/jobs/batch" && request.method === "POST") {
    // a batch answers ids, not jobs: its payloads are not echoed, so only queue and key are checked
    for (const [i, entry] of (body.jobs as Array<{ created: boolean; id: string }>).entries()) {
      if (entry.created) {
        const item = sent?.jobs?.[i]
        accepted.set(entry.id, {
          queue: item?.queue ?? "default",
          idempotencyKey: item?.idempotencyKey ?? null
        })
      } else if (!accepted.has(entry.id)) throw new Error(`${where}: a replay of a job never created`)
    }
  }
}

describe(`API fuzzing (${profile}): ${runs} requests from the OpenAPI document, seed ${seed}`, () => {
  it(
    "never answers 5xx, always the documented problem shape, and stores exactly the accepted jobs verbatim",
    async () => {
      const began = Date.now()
      await fc.assert(
        fc.asyncProperty(requestFor(spec, operations), async (request) => {
          try {
            await send(request)
          } catch (error) {
            failures++
            throw error
          }
        }),
        { numRuns: runs, seed, endOnFailure: true }
      )
      const rows = await query<{
        id: string
        queue: string
        payload: unknown
        idempotencyKey: string | null
      }>(`SELECT id::text AS id, queue, payload, idempotency_key AS "idempotencyKey" FROM jobs`)
      const stored = new Map(rows.map((r) => [r.id, r]))
      expect([...stored.keys()].sort()).toEqual([...accepted.keys()].sort())
      let verbatim = 0
      for (const [id, sent] of accepted) {
        if (sent === null) continue
        const row = stored.get(id)!
        const echoed = "payload" in sent
        expect({
          id,
          queue: row.queue,
          key: row.idempotencyKey,
          ...(echoed ? { payload: row.payload } : {})
        }).toEqual({
          id,
          queue: sent.queue,
          key: sent.idempotencyKey,
          ...(echoed ? { payload: sent.payload } : {})
        })
        verbatim++
      }
      const [canary] = await query<{ n: number }>("SELECT count(*)::int AS n FROM fuzz_canary")
      expect(canary!.n).toBe(1)
      const sqlStored = rows.filter((r) =>
        /DROP TABLE|DELETE FROM|TRUNCATE|' OR '/.test(JSON.stringify(r))
      ).length
      report("fuzz", {
        runs,
        seed,
        ms: Date.now() - began,
        statuses: Object.fromEntries([...statuses].sort(([a], [b]) => a - b)),
        accepted: accepted.size,
        checkedVerbatim: verbatim,
        sqlLookingStored: sqlStored,
        failures
      })
    },
    pick(120_000, 1_800_000)
  )
})

describe("what the fuzzer found, pinned", () => {
  const post = (body: string) =>
    api.handler(
      new Request("http://api.test/jobs", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body
      })
    )

  it("a lone UTF-16 surrogate in a payload string or key is a 422 naming it, not a 500 from jsonb", async () => {
    for (const body of [
      '{"kind":"cpu_hash","payload":{"seed":"\\ud800","rounds":1}}',
      '{"kind":"cpu_hash","payload":{"seed":"a\\udfffb","rounds":1}}'
    ]) {
      const response = await post(body)
      expect(response.status).toBe(422)
      const problem = await response.json()
      expect(problem.errors[0].path).toEqual(["body", "payload", "seed"])
      expect(problem.errors[0].message).toContain("lone UTF-16 surrogate")
    }
    // a proper pair is a character like any other
    const ok = await post('{"kind":"cpu_hash","payload":{"seed":"\\ud83d\\ude00","rounds":1}}')
    expect(ok.status).toBe(201)
    expect((await ok.json()).payload.seed).toBe("\u{1F600}")
  })

  it("an idempotency key with a lone surrogate is a 422: stored, it would become U+FFFD and merge with others", async () => {
    const response = await post('{"kind":"noop","payload":{},"idempotencyKey":"k\\ud800"}')
    expect(response.status).toBe(422)
    expect((await response.json()).errors[0].path).toEqual(["body", "idempotencyKey"])
  })

  it("a job id over the router's 100-character parameter limit is the documented job-not-found, not route-not-found", async () => {
    const id = "a".repeat(150)
    for (const [method, path] of [
      ["GET", `/jobs/${id}`],
      ["POST", `/jobs/${id}/cancel`],
      ["POST", `/jobs/${id}/retry`]
    ] as const) {
      const response = await api.request(path, { method })
      expect(response.status).toBe(404)
      const problem = await response.json()
      expect(problem.type).toBe("urn:jobq:problem:job-not-found")
      expect(problem.jobId).toBe(id)
    }
  })
})
