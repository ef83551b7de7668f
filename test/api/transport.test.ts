/**
 * The edges of HTTP itself, over a real socket to the API as `bun run api` serves it (`program.serve` on
 * Bun.serve): huge declared bodies, compressed bodies, methods, and the case of paths. Every answer is the
 * API's own problem+json, and routing and the metrics' route label agree on which paths exist.
 */
import { afterAll, describe, expect, it } from "bun:test"
import { connect } from "node:net"
import { gzipSync } from "node:zlib"
import { Effect, Layer, ManagedRuntime, type Redacted } from "effect"
import { ApiConfig, DatabaseConfig } from "../../src/Config.ts"
import * as Database from "../../src/db/Database.ts"
import * as ApiProgram from "../../src/http/program.ts"
import { demoKinds } from "../../src/kinds/DemoKinds.ts"
import { freshDatabase } from "../support/database.ts"
import { freePort } from "../support/ports.ts"
import { parseFamilies } from "../support/prometheus.ts"

const maxBodyBytes = 4096
const db = await freshDatabase(import.meta.file)
const port = freePort()
const runtime = ManagedRuntime.make(
  ApiProgram.serve(demoKinds, { port }).pipe(
    Layer.provide(Database.layerUrl(db.url, { maxConnections: 4, ...DatabaseConfig.apiDefaults })),
    Layer.provide(ApiConfig.layer({ maxBodyBytes, tokens: [] as Array<Redacted.Redacted<string>> }))
  )
)
await runtime.runPromise(Effect.void)
afterAll(async () => {
  await runtime.dispose()
  await db.drop()
})

interface RawAnswer {
  /** 0 when the server closed the connection without answering. */
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: string
}

/** Sends `head` (and `body`) as written, on a connection of its own, and reads the answer until it closes. */
const raw = (head: string, body: Uint8Array | string = "") =>
  new Promise<RawAnswer>((resolve, reject) => {
    const chunks: Array<Buffer> = []
    const socket = connect(port, "127.0.0.1", () => {
      socket.write(`${head}\r\nHost: api.test\r\nConnection: close\r\n\r\n`)
      if (body.length > 0) socket.write(body)
    })
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer to ${head} within 10 s`)))
    socket.on("data", (chunk: Buffer) => chunks.push(chunk))
    socket.on("error", (error) =>
      (error as { code?: string }).code === "ECONNRESET" ? undefined : reject(error)
    )
    socket.on("close", () => {
      const text = Buffer.concat(chunks).toString("utf8")
      if (text === "") return resolve({ status: 0, headers: {}, body: "" })
      const [top = "", ...rest] = text.split("\r\n\r\n")
      const [statusLine = "", ...lines] = top.split("\r\n")
      const headers: Record<string, string> = {}
      for (const line of lines) {
        const at = line.indexOf(":")
        headers[line.slice(0, at).trim().toLowerCase()] = line.slice(at + 1).trim()
      }
      let payload = rest.join("\r\n\r\n")
      if (headers["transfer-encoding"] === "chunked") {
        let decoded = ""
        for (let at = 0; ; ) {
          const end = payload.indexOf("\r\n", at)
          const size = Number.parseInt(payload.slice(at, end), 16)
          if (!(size > 0)) break
          decoded += payload.slice(end + 2, end + 2 + size)
          at = end + 2 + size + 2
        }
        payload = decoded
      }
      resolve({ status: Number(statusLine.split(" ")[1]), headers, body: payload })
    })
  })

const expectProblem = (answer: RawAnswer, status: number, type: string) => {
  expect({
    status: answer.status,
    problem: answer.headers["content-type"]?.startsWith("application/problem+json")
  }).toEqual({
    status,
    problem: true
  })
  const problem = JSON.parse(answer.body)
  expect(problem.type).toBe(`urn:jobq:problem:${type}`)
  return problem
}

const job = JSON.stringify({ kind: "noop", payload: {} })

describe("bodies", () => {
  it("a Content-Length over Bun's own limit (128 MiB) is the API's 413, not Bun's bare one", async () => {
    for (const length of [maxBodyBytes + 1, 200 * 1024 * 1024, 2 ** 40]) {
      const answer = await raw(
        `POST /jobs HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: ${length}`,
        "{"
      )
      expect(expectProblem(answer, 413, "payload-too-large").maxBytes).toBe(maxBodyBytes)
    }
  })

  it("a compressed body is a 415 naming its Content-Encoding, with Accept-Encoding: identity", async () => {
    const gzipped = gzipSync(job)
    for (const coding of ["gzip", "br", "deflate, gzip"]) {
      const answer = await raw(
        `POST /jobs HTTP/1.1\r\nContent-Type: application/json\r\nContent-Encoding: ${coding}\r\nContent-Length: ${gzipped.length}`,
        gzipped
      )
      expect(expectProblem(answer, 415, "unsupported-media-type").detail).toContain(coding)
      expect(answer.headers["accept-encoding"]).toBe("identity")
    }
    const plain = await raw(
      `POST /jobs HTTP/1.1\r\nContent-Type: application/json\r\nContent-Encoding: identity\r\nContent-Length: ${job.length}`,
      job
    )
    expect(plain.status).toBe(201)
  })
})

describe("methods", () => {
  it("a registered method no route takes is a 405 problem with Allow", async () => {
    for (const method of ["PROPFIND", "QUERY", "TRACE"]) {
      const answer = await raw(`${method} /jobs HTTP/1.1`)
      expectProblem(answer, 405, "method-not-allowed")
      expect(answer.headers.allow).toBe("POST, GET, HEAD")
    }
  })

  it("a method outside HTTP's registry never reaches the API: Bun closes the connection (docs/api.md)", async () => {
    // oven-sh/bun#6556: Bun.serve drops the request before any handler runs. When this fails, Bun answers
    // such methods itself: make sure it is the API's problem shape, and update docs/api.md.
    expect((await raw("FOO /jobs HTTP/1.1")).status).toBe(0)
  })
})

describe("paths", () => {
  const scrape = async () => {
    const answer = await raw("GET /metrics HTTP/1.1")
    const counts = new Map<string, number>()
    for (const family of parseFamilies(answer.body))
      if (family.name === "jobq_http_requests_total")
        for (const m of family.metrics)
          counts.set(`${m.labels?.route} ${m.labels?.method} ${m.labels?.status}`, Number(m.value))
    return counts
  }

  /** The series a request for `path` added to: `route method status`. */
  const labelOf = async (path: string) => {
    const before = await scrape()
    const answer = await raw(`GET ${path} HTTP/1.1`)
    const after = await scrape()
    const grown = [...after].filter(
      ([key, value]) =>
        value > (before.get(key) ?? 0) &&
        !(key === "/metrics GET 200" && value === (before.get(key) ?? 0) + 1)
    )
    expect(grown.length).toBe(1)
    return { answer, series: grown[0]![0] }
  }

  it("paths are case-sensitive: GET /JOBS is a 404 and counted as unmatched", async () => {
    const { answer, series } = await labelOf("/JOBS")
    expectProblem(answer, 404, "route-not-found")
    expect(series).toBe("unmatched GET 404")
  })

  it("a path is answered by a route exactly when its metrics name that route", async () => {
    const id = crypto.randomUUID()
    const paths = [
      "/jobs",
      "/jobs/",
      "/Jobs",
      "//jobs",
      "/jobs//",
      "/jo%62s",
      `/jobs/${id}`,
      `/JOBS/${id}`,
      `/jobs/${id}/`,
      `/jobs/${id}/CANCEL`,
      "/jobs/batch",
      "/JOBS/batch",
      "/health",
      "/HEALTH",
      "/health/",
      "/docs",
      "/DOCS",
      "/api-docs/openapi.json",
      "/API-DOCS/openapi.json",
      "/jobs;x"
    ]
    for (const path of paths) {
      const { answer, series } = await labelOf(path)
      const unrouted =
        answer.status === 404 && JSON.parse(answer.body).type === "urn:jobq:problem:route-not-found"
      expect({ path, series, unrouted, unmatched: series.startsWith("unmatched ") }).toEqual({
        series,
        path,
        unrouted,
        unmatched: unrouted
      })
      expect(series.endsWith(` ${answer.status}`)).toBe(true)
    }
  })
})
