/**
 * The API program as `npm run api` runs it (src/api.ts, served by Bun.serve), spoken to over raw TCP: what
 * only a real socket shows. A client that declares a body and holds it back still gets its 413 or 401,
 * because neither waits for the body; MAX_BODY_BYTES comes from the environment; the program warns when it
 * starts open; and a defect is answered 500 in the problem shape without a word of its cause.
 */
import { afterAll, describe, expect, it } from "bun:test"
import { connect } from "node:net"
import { tmpdir } from "node:os"
import { fileURLToPath } from "node:url"
import { SQL } from "bun"
import { freshDatabase } from "../support/database.ts"
import { freePort } from "../support/ports.ts"
import { waitFor } from "../support/runtime.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))
const db = await freshDatabase(import.meta.file)
const pg = new SQL({ url: db.url, max: 1 })
const tokens = ["alpha-token-0123456789", "beta-token-9876543210"]
const maxBodyBytes = 1000

const startApi = (name: string, env: Record<string, string>) => {
  const port = freePort()
  const log = `${tmpdir()}/jobq-api-${name}-${process.pid}.log`
  const { API_TOKENS: _, MAX_BODY_BYTES: __, ...inherited } = process.env
  const child = Bun.spawn([process.execPath, "src/api.ts"], {
    cwd: root,
    env: { ...inherited, DATABASE_URL: db.url, PORT: String(port), ...env },
    stdout: Bun.file(log),
    stderr: Bun.file(`${log}.err`)
  })
  return { port, base: `http://127.0.0.1:${port}`, child, log }
}

const secured = startApi("secured", { API_TOKENS: tokens.join(","), MAX_BODY_BYTES: String(maxBodyBytes) })
const open = startApi("open", {})
afterAll(async () => {
  for (const api of [secured, open]) api.child.kill("SIGKILL")
  await Promise.all([secured.child.exited, open.child.exited])
  await pg.close()
  await db.drop()
})
await Promise.all(
  [secured, open].map((api) =>
    waitFor(
      `the ${api === open ? "open" : "secured"} API to answer /health`,
      async () => {
        if (api.child.exitCode !== null) throw new Error(`the API exited with ${api.child.exitCode}`)
        return fetch(`${api.base}/health`).then(
          (r) => (r.status === 200 ? true : undefined),
          () => undefined
        )
      },
      { timeoutMs: 30_000, intervalMs: 50 }
    )
  )
)

interface RawAnswer {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: any
}

/** A complete HTTP/1.1 response in `bytes`, or undefined while more is to come. */
const parseResponse = (bytes: Buffer): RawAnswer | undefined => {
  const end = bytes.indexOf("\r\n\r\n")
  if (end === -1) return undefined
  const [statusLine, ...lines] = bytes.subarray(0, end).toString("latin1").split("\r\n")
  const headers = Object.fromEntries(
    lines.map((line) => {
      const colon = line.indexOf(":")
      return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()]
    })
  )
  let rest = bytes.subarray(end + 4)
  let body: Buffer
  if (headers["transfer-encoding"] === "chunked") {
    const chunks: Array<Buffer> = []
    for (;;) {
      const lineEnd = rest.indexOf("\r\n")
      if (lineEnd === -1) return undefined
      const size = Number.parseInt(rest.subarray(0, lineEnd).toString(), 16)
      if (rest.length < lineEnd + 2 + size + 2) return undefined
      if (size === 0) break
      chunks.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size))
      rest = rest.subarray(lineEnd + 2 + size + 2)
    }
    body = Buffer.concat(chunks)
  } else {
    const length = Number(headers["content-length"] ?? 0)
    if (rest.length < length) return undefined
    body = rest.subarray(0, length)
  }
  const text = body.toString("utf8")
  const type = headers["content-type"] ?? ""
  return {
    status: Number(statusLine!.split(" ")[1]),
    headers,
    body: type.includes("json") && text !== "" ? JSON.parse(text) : text
  }
}

/**
 * Opens a connection, sends the request head and `sent` (the start of the body, or all of it), and waits
 * for the whole response without sending anything more or closing its side: an answer that arrives proves
 * the server did not wait for the rest of the body.
 */
const exchange = (port: number, head: string, sent = "", timeoutMs = 10_000) =>
  new Promise<RawAnswer>((resolve, reject) => {
    const socket = connect(port, "127.0.0.1")
    let received = Buffer.alloc(0)
    const done = (settle: () => void) => {
      clearTimeout(timer)
      socket.destroy()
      settle()
    }
    const timer = setTimeout(
      () => done(() => reject(new Error(`no complete answer within ${timeoutMs} ms while holding the body`))),
      timeoutMs
    )
    socket.on("connect", () => socket.write(head + sent))
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      const answer = parseResponse(received)
      if (answer !== undefined) done(() => resolve(answer))
    })
    socket.on("error", (error) => done(() => reject(error)))
    socket.on("close", () =>
      done(() => reject(new Error(`closed after ${received.length} bytes, before a complete answer`)))
    )
  })

const requestHead = (method: string, path: string, headers: Record<string, string>) =>
  `${method} ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n${Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("")}\r\n`

const postJobs = (contentLength: number, extra: Record<string, string> = {}) =>
  requestHead("POST", "/jobs", {
    "content-type": "application/json",
    "content-length": String(contentLength),
    ...extra
  })

const authorized = { authorization: `Bearer ${tokens[1]}` }

describe("the API program over a real socket", () => {
  it("answers 413 for a declared length over MAX_BODY_BYTES (1000, from the environment) while the client holds the rest", async () => {
    // 1001 bytes is far under the default limit (1 MiB): only the environment's 1000 refuses it
    for (const declared of [maxBodyBytes + 1, 10 * 1024 * 1024]) {
      const answer = await exchange(secured.port, postJobs(declared, authorized), '{"kind":"noop","payload":')
      expect(answer.status).toBe(413)
      expect(answer.headers["content-type"]).toStartWith("application/problem+json")
      expect(answer.body).toMatchObject({
        type: "urn:jobq:problem:payload-too-large",
        maxBytes: maxBodyBytes
      })
    }
    // within the limit, a whole body is read and accepted
    const body = JSON.stringify({ kind: "sleep", payload: { ms: 0 }, queue: "x".repeat(20) })
    const padded = body.padEnd(maxBodyBytes, " ")
    const accepted = await exchange(secured.port, postJobs(padded.length, authorized), padded)
    expect(accepted.status).toBe(201)
  })

  it("answers 401 before reading any of the body: the answer comes though the body is never sent", async () => {
    for (const headers of [{}, { authorization: "Bearer not-a-token" }]) {
      for (const declared of [500, 10 * 1024 * 1024]) {
        const answer = await exchange(secured.port, postJobs(declared, headers))
        expect(answer.status).toBe(401)
        expect(answer.headers["www-authenticate"]).toStartWith("Bearer")
        expect(answer.body.type).toBe("urn:jobq:problem:unauthorized")
      }
    }
  })

  it("warns at startup when API_TOKENS is not set, and not when it is", async () => {
    const lines = async (log: string) =>
      (await Bun.file(log).text())
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as { message: unknown; level: string })
    const openWarning = (await lines(open.log)).filter(
      (l) => l.level === "WARN" && String(l.message).includes("API_TOKENS is not set")
    )
    expect(openWarning.length).toBe(1)
    const securedLog = await lines(secured.log)
    expect(securedLog.filter((l) => String(l.message).includes("API_TOKENS is not set"))).toEqual([])
    expect(securedLog.some((l) => String(l.message).includes("bearer auth on: 2 token(s)"))).toBe(true)
  })

  it("answers a defect 500 internal-error in the problem shape, logs its cause, and sends none of it", async () => {
    const marker = `internal-marker-${crypto.randomUUID()}`
    // a real failure inside the database, of no kind the API knows: a defect
    await pg.unsafe(`CREATE FUNCTION explode() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION '${marker} in table jobs'; END $$`)
    await pg.unsafe(`CREATE TRIGGER explode BEFORE INSERT ON jobs FOR EACH ROW
      WHEN (NEW.queue = 'explode') EXECUTE FUNCTION explode()`)
    const response = await fetch(`${open.base}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ kind: "noop", payload: {}, queue: "explode" })
    })
    expect(response.status).toBe(500)
    expect(response.headers.get("content-type")).toStartWith("application/problem+json")
    const text = await response.text()
    const problem = JSON.parse(text)
    expect(problem).toMatchObject({ type: "urn:jobq:problem:internal-error", status: 500 })
    expect(typeof problem.title).toBe("string")
    for (const internal of [marker, "SqlError", "RAISE", "explode", "at /", ".ts:", "stack"]) {
      expect(text).not.toContain(internal)
    }
    // the cause is in the log
    await waitFor("the defect's cause in the API's log", async () =>
      (await Bun.file(open.log).text()).includes(marker) ? true : undefined
    )
    // the same API still serves the next request
    const next = await fetch(`${open.base}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ kind: "noop", payload: {} })
    })
    expect(next.status).toBe(201)
  })
})
