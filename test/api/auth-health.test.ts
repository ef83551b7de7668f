import { describe, expect, it } from "bun:test"
import { timingSafeEqual } from "node:crypto"
import { Redacted } from "effect"
import { makeVerifier } from "../../src/http/BearerAuth.ts"
import { jobEndpointRequests, setupApiTests, webHandler } from "../support/api.ts"

const tokens = ["alpha-token-0123456789", "beta-token-9876543210"]
const secured = await setupApiTests(import.meta.file, { tokens })
const open = webHandler(secured.db.url)
const lockedDocs = webHandler(secured.db.url, { tokens, publicDocs: false })
/** Nothing listens on port 1: every connection is refused. */
const unreachable = webHandler("postgres://postgres@127.0.0.1:1/jobq")

const get = (
  handler: (r: Request) => Promise<Response>,
  path: string,
  headers: Record<string, string> = {}
) => handler(new Request(`http://api.test${path}`, { headers }))
const postJob = (handler: (r: Request) => Promise<Response>, headers: Record<string, string> = {}) =>
  handler(
    new Request("http://api.test/jobs", {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ kind: "noop", payload: {} })
    })
  )

describe("bearer auth (API_TOKENS set)", () => {
  const protectedPaths = ["/jobs", `/jobs/${crypto.randomUUID()}`, "/metrics", "/nowhere"]
  const docsPaths = ["/docs", "/api-docs/openapi.json"]

  it("answers 401 with a challenge without a token, with a wrong one, or with another scheme", async () => {
    for (const path of protectedPaths) {
      for (const headers of [
        {},
        { authorization: "Bearer wrong" },
        { authorization: `Basic ${btoa("a:b")}` }
      ]) {
        const response = await get(secured.handler, path, headers)
        expect(response.status).toBe(401)
        expect(response.headers.get("www-authenticate")).toStartWith("Bearer")
        expect((await response.json()).type).toBe("urn:jobq:problem:unauthorized")
      }
    }
    expect((await postJob(secured.handler)).status).toBe(401)
  })

  it("accepts each configured token", async () => {
    for (const token of tokens) {
      const response = await postJob(secured.handler, { authorization: `Bearer ${token}` })
      expect(response.status).toBe(201)
      expect((await get(secured.handler, "/jobs", { authorization: `bearer ${token}` })).status).toBe(200)
    }
  })

  it("rejects a token that is a prefix or an extension of a real one", async () => {
    for (const token of [tokens[0]!.slice(0, -1), `${tokens[0]}x`]) {
      expect((await get(secured.handler, "/jobs", { authorization: `Bearer ${token}` })).status).toBe(401)
    }
  })

  it("compares fixed-size digests against every token, whatever is presented: nothing short-circuits", async () => {
    const compared: Array<[number, number]> = []
    const recording = (a: Uint8Array, b: Uint8Array) => {
      compared.push([a.length, b.length])
      return timingSafeEqual(a, b)
    }
    const verify = makeVerifier(
      tokens.map((token) => Redacted.make(token)),
      recording
    )
    const first = tokens[0]!
    const presented = [
      "x",
      `${first.slice(0, 1) === "a" ? "b" : "a"}${first.slice(1)}`, // differs in the first byte only
      `${first.slice(0, -1)}#`, // differs in the last byte only
      first.slice(0, -1),
      "y".repeat(4096),
      first, // matches the first token: the second is still compared
      tokens[1]!
    ]
    for (const token of presented) {
      compared.length = 0
      expect(await verify(`Bearer ${token}`)).toBe(tokens.includes(token))
      // one comparison per configured token, each of two 32-byte SHA-256 digests: the time taken depends
      // on neither the presented token's length, nor how much of it matched, nor which token it is
      expect(compared).toEqual(tokens.map(() => [32, 32]))
    }
  })

  it("leaves /health open", async () => {
    expect((await get(secured.handler, "/health")).status).toBe(200)
  })

  it("serves Swagger UI and the OpenAPI document without a token, so a browser can load the UI and Authorize", async () => {
    for (const path of docsPaths) expect((await get(secured.handler, path)).status).toBe(200)
    // the UI sends the token it is given: the document declares the bearer scheme
    const document = await (await get(secured.handler, "/api-docs/openapi.json")).json()
    expect(Object.keys(document.components.securitySchemes)).toContain("bearer")
  })

  it("puts the docs behind the tokens too with API_PUBLIC_DOCS=false", async () => {
    for (const path of docsPaths) {
      expect((await get(lockedDocs, path)).status).toBe(401)
      expect((await get(lockedDocs, path, { authorization: `Bearer ${tokens[0]}` })).status).toBe(200)
    }
    expect((await get(lockedDocs, "/health")).status).toBe(200)
  })
})

describe("no API_TOKENS", () => {
  it("is open", async () => {
    expect((await postJob(open)).status).toBe(201)
    expect((await get(open, "/jobs")).status).toBe(200)
    expect((await get(open, "/metrics")).status).toBe(200)
  })
})

describe("/health", () => {
  it("answers 200 when the database answers", async () => {
    const response = await get(open, "/health")
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ status: "ok", database: "up" })
  })

  it("answers 503 with a reason and Retry-After when the database is unreachable", async () => {
    const response = await get(unreachable, "/health")
    expect(response.status).toBe(503)
    expect(Number(response.headers.get("retry-after"))).toBeGreaterThan(0)
    const problem = await response.json()
    expect(problem.type).toBe("urn:jobq:problem:database-unavailable")
    expect(problem.detail).toContain("ConnectionError")
  })

  it("every endpoint that needs the database answers 503 with Retry-After, not 500", async () => {
    for (const request of jobEndpointRequests()) {
      const response = await unreachable(request)
      expect(response.status).toBe(503)
      expect(response.headers.get("retry-after")).not.toBeNull()
      expect((await response.json()).type).toBe("urn:jobq:problem:database-unavailable")
    }
    // what needs no database still works
    expect((await get(unreachable, "/metrics")).status).toBe(200)
  })
})
