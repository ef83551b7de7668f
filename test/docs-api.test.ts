/**
 * docs/api.md's examples, run: each `<!-- example: name -->` is followed by a request and the response the
 * API must give. The request runs through the web handler on a fresh database, after the setup named for
 * the example below puts the job it acts on in the state the text describes; the answer must match the
 * documented status, the documented headers, and the body's keys, types and values, ids and timestamps
 * compared by shape only. UPDATE_DOC_EXAMPLES=1 rewrites the documented responses from the API's answers.
 */
import { afterAll, describe, expect, it } from "bun:test"
import { readFileSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { makeApi } from "../src/http/Api.ts"
import * as RouteTable from "../src/http/RouteTable.ts"
import { demoKinds } from "../src/kinds/DemoKinds.ts"
import { JobRepo } from "../src/queue/JobRepo.ts"
import { WorkerRepo } from "../src/queue/WorkerRepo.ts"
import { setupApiTests, webHandler } from "./support/api.ts"
import { freshDatabase } from "./support/database.ts"

const docPath = fileURLToPath(new URL("../docs/api.md", import.meta.url))
const updating = process.env.UPDATE_DOC_EXAMPLES === "1"

// --- the document ---------------------------------------------------------------------------------------

interface Message {
  readonly startLine: string
  readonly headers: ReadonlyArray<readonly [string, string]>
  readonly body: string
}
interface Example {
  readonly name: string
  readonly request: Message
  readonly response: Message
  /** Where the response block's content sits in the document (for UPDATE_DOC_EXAMPLES). */
  readonly responseAt: readonly [number, number]
}

const parseMessage = (text: string): Message => {
  const [head = "", ...rest] = text.split(/\n\n/)
  const [startLine = "", ...headerLines] = head.split("\n").filter((line) => line.trim() !== "")
  return {
    startLine: startLine.trim(),
    headers: headerLines.map((line) => {
      const colon = line.indexOf(":")
      return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()] as const
    }),
    body: rest.join("\n\n").trim()
  }
}

const parseExamples = (markdown: string): Array<Example> => {
  const pattern = /<!-- example: ([\w-]+) -->\n```http\n([\s\S]*?)```\n+```http\n([\s\S]*?)```/g
  return [...markdown.matchAll(pattern)].map((match) => {
    const responseStart = match.index! + match[0].length - 3 - match[3]!.length
    return {
      name: match[1]!,
      request: parseMessage(match[2]!),
      response: parseMessage(match[3]!),
      responseAt: [responseStart, responseStart + match[3]!.length] as const
    }
  })
}

const markdown = readFileSync(docPath, "utf8")
const examples = parseExamples(markdown)

// --- the API and the states the examples start from ------------------------------------------------------

const api = await setupApiTests(import.meta.file)
const servers: Record<string, (request: Request) => Promise<Response>> = {
  "payload-too-large": webHandler(api.db.url, { maxBodyBytes: 64 }),
  unauthorized: webHandler(api.db.url, { tokens: ["docs-example-token"] }),
  // nothing listens on port 1: every connection is refused
  "health-unavailable": webHandler("postgres://postgres@127.0.0.1:1/jobq"),
  forbidden: webHandler(api.db.url, { tokens: ["docs-example-token"], readTokens: ["docs-read-token"] })
}
// the overview's figures on a database of their own: the other examples' jobs would make them vary
const statsDatabase = await freshDatabase("docs-api-stats")
afterAll(() => statsDatabase.drop())
servers.stats = webHandler(statsDatabase.url)

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  api.handler(
    new Request(`http://api.test${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body)
    })
  )
const enqueue = async (body: unknown) => {
  const response = await post("/jobs", body)
  if (response.status !== 201) throw new Error(`setup enqueue answered ${response.status}`)
  return ((await response.json()) as { id: string }).id
}
const worker = "worker-1"
const claim = (id: string, queue: string) =>
  api.run(
    JobRepo.use((repo) =>
      Effect.gen(function* () {
        const [claimed] = yield* repo.claim(worker, 1, 30_000, [queue])
        if (claimed?.id !== id) return yield* Effect.die(new Error(`setup claimed ${claimed?.id}, not ${id}`))
      })
    )
  )

/** Puts the database in the state an example starts from; answers the id of the job it acts on, if any. */
const setups: Record<string, () => Promise<string | undefined>> = {
  enqueue: async () => undefined,
  "enqueue-delayed": async () => undefined,
  "enqueue-idempotent-repeat": async () => {
    await post("/jobs", { kind: "noop", payload: {} }, { "idempotency-key": "order-42" })
    return undefined
  },
  "idempotency-conflict": async () => {
    await post("/jobs", { kind: "sleep", payload: { ms: 100 } }, { "idempotency-key": "order-43" })
    return undefined
  },
  "enqueue-unique-duplicate": async () => {
    await post("/jobs", {
      kind: "cpu_hash",
      payload: { seed: "customer-7", rounds: 3 },
      queue: "reports",
      unique: { by: ["kind", "payload.seed"], period: "1 hour" }
    })
    return undefined
  },
  "validation-failed": async () => undefined,
  "unknown-kind": async () => undefined,
  "malformed-json": async () => undefined,
  "unsupported-media-type": async () => undefined,
  "payload-too-large": async () => undefined,
  batch: async () => undefined,
  "batch-invalid": async () => undefined,
  get: () => enqueue({ kind: "cpu_hash", payload: { seed: "abc", rounds: 1000 } }),
  "get-unknown": async () => undefined,
  "wait-finished": async () => {
    const id = await enqueue({ kind: "noop", payload: {}, queue: "finished" })
    await claim(id, "finished")
    await api.run(JobRepo.use((repo) => repo.complete(worker, [{ id, result: null }])))
    return id
  },
  "wait-timeout": () => enqueue({ kind: "noop", payload: {}, queue: "nightly" }),
  "wait-invalid": () => enqueue({ kind: "noop", payload: {}, queue: "nightly" }),
  "enqueue-wait": async () => undefined,
  list: async () => {
    for (let i = 0; i < 3; i++) await enqueue({ kind: "noop", payload: {}, queue: "reports" })
    return undefined
  },
  "list-invalid": async () => undefined,
  "cancel-queued": () => enqueue({ kind: "sleep", payload: { ms: 60_000 }, queue: "emails" }),
  "cancel-running": async () => {
    const id = await enqueue({ kind: "sleep", payload: { ms: 60_000 }, queue: "imports" })
    await claim(id, "imports")
    return id
  },
  "cancel-finished": async () => {
    const id = await enqueue({ kind: "noop", payload: {}, queue: "finished" })
    await claim(id, "finished")
    await api.run(JobRepo.use((repo) => repo.complete(worker, [{ id, result: null }])))
    return id
  },
  retry: async () => {
    const id = await enqueue({ kind: "flaky", payload: { failTimes: 1 }, queue: "billing", maxAttempts: 1 })
    await claim(id, "billing")
    await api.run(
      JobRepo.use((repo) =>
        repo.fail(worker, {
          id,
          error: "Error: flaky: attempt 1 of 1 planned failures",
          retryDelayMs: 0,
          permanent: false
        })
      )
    )
    return id
  },
  "retry-conflict": () => enqueue({ kind: "noop", payload: {}, queue: "default" }),
  "flow-create": async () => undefined,
  "flow-invalid": async () => undefined,
  "flow-get": async () => {
    const response = await post("/flows", {
      jobs: [
        { name: "a", kind: "noop", payload: {}, queue: "flow-docs" },
        { name: "b", kind: "noop", payload: {}, queue: "flow-docs", dependsOn: ["a"] }
      ]
    })
    const flow = (await response.json()) as { id: string; jobs: Array<{ id: string }> }
    await claim(flow.jobs[0]!.id, "flow-docs")
    await api.run(
      JobRepo.use((repo) => repo.complete(worker, [{ id: flow.jobs[0]!.id, result: { rows: 3 } }]))
    )
    return flow.id
  },
  "flow-cancel": async () => {
    const response = await post("/flows", {
      jobs: [
        { name: "a", kind: "sleep", payload: { ms: 1000 }, queue: "flow-docs-cancel" },
        { name: "b", kind: "noop", payload: {}, queue: "flow-docs-cancel", dependsOn: ["a"] }
      ]
    })
    return ((await response.json()) as { id: string }).id
  },
  "queues-list": async () => undefined,
  "queue-get": async () => undefined,
  "queue-get-unknown": async () => undefined,
  "queue-pause": async () => undefined,
  "queue-pause-again": async () => undefined,
  "queue-resume": async () => undefined,
  "queue-limits": async () => undefined,
  "queue-limits-invalid": async () => undefined,
  workers: async () => {
    await api.run(
      WorkerRepo.use((repo) =>
        repo.beat({
          id: "worker-1",
          host: "host-a",
          pid: 4242,
          queues: ["emails"],
          concurrency: 10,
          ttlMs: 15_000,
          leaseMs: 30_000,
          first: true
        })
      )
    )
    return undefined
  },
  "schedule-define": async () => undefined,
  "schedule-define-invalid": async () => undefined,
  "schedules-list": async () => undefined,
  "schedule-get": async () => undefined,
  "schedule-get-unknown": async () => undefined,
  "schedule-change": async () => undefined,
  "schedule-pause": async () => undefined,
  "schedule-trigger": async () => undefined,
  "schedule-resume": async () => undefined,
  "schedule-delete": async () => undefined,
  // a job no worker serves: the example's stream follows it while the test runs it (`whileStreaming`),
  // then deletes it (the queue listings below stay as documented)
  events: () => enqueue({ kind: "noop", payload: {}, queue: "nightly" }),
  health: async () => undefined,
  "health-unavailable": async () => undefined,
  metrics: async () => undefined,
  "route-not-found": async () => undefined,
  "method-not-allowed": async () => undefined,
  unauthorized: async () => undefined,
  stats: async () => {
    for (let i = 0; i < 2; i++)
      await servers.stats!(
        new Request("http://api.test/jobs", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ kind: "noop", payload: {}, queue: "emails" })
        })
      )
    return undefined
  },
  "list-payload": async () => {
    await enqueue({ kind: "sleep", payload: { ms: 4241 }, queue: "dashboard" })
    return enqueue({ kind: "sleep", payload: { ms: 4242 }, queue: "dashboard" })
  },
  "list-payload-invalid": async () => undefined,
  delete: () => enqueue({ kind: "noop", payload: {}, queue: "default" }),
  "run-now": () => enqueue({ kind: "noop", payload: {}, queue: "default", delayMs: 3_600_000 }),
  bulk: async () => {
    for (let i = 0; i < 3; i++) await enqueue({ kind: "noop", payload: {}, queue: "bulk-example" })
    return undefined
  },
  "bulk-operation": async () => {
    for (let i = 0; i < 2; i++) await enqueue({ kind: "noop", payload: {}, queue: "bulk-example" })
    return undefined
  },
  "bulk-operation-get": async () => {
    // the operation of the example before, once the server has finished it
    const listed = (await (await api.handler(new Request("http://api.test/bulk-operations"))).json()) as {
      operations: Array<{ id: string }>
    }
    const id = listed.operations[0]!.id
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; await Bun.sleep(20)) {
      const op = (await (await api.handler(new Request(`http://api.test/bulk-operations/${id}`))).json()) as {
        status: string
      }
      if (["succeeded", "cancelled", "failed"].includes(op.status)) break
    }
    return id
  },
  "bulk-operations-list": async () => undefined,
  "bulk-operation-cancel": async () => {
    // a running operation of another API process that has not run a batch yet
    const id = crypto.randomUUID()
    await api.run(
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) => sql`
          INSERT INTO bulk_operations (id, action, filter, owner)
          VALUES (${id}, 'delete', '{"queue":"bulk-example"}'::jsonb, 'another-api-process')`
      )
    )
    return id
  },
  forbidden: async () => undefined
}

/** What happens while an example's event stream is open: its job runs, as a worker's statements run it. */
const whileStreaming: Record<string, (jobId: string | undefined) => Promise<void>> = {
  events: async (id) => {
    await api.run(
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql`UPDATE jobs SET status = 'running', attempts = 1, lease_owner = 'docs', lease_expires_at = now() + interval '1 minute', started_at = now() WHERE id = ${id!}`.pipe(
          Effect.andThen(
            sql`UPDATE jobs SET status = 'succeeded', result = '{}', finished_at = now(), lease_owner = NULL, lease_expires_at = NULL WHERE id = ${id!}`
          ),
          Effect.andThen(sql`DELETE FROM jobs WHERE id = ${id!}`)
        )
      )
    )
  }
}

/**
 * The body of an event stream: the messages up to as many events as the documented body shows (it never
 * ends by itself), then the stream is cancelled. Comments (`: ping`) are dropped, but for the first.
 */
const readEventStream = async (response: Response, documented: string, onOpen: () => Promise<void>) => {
  const wanted = documented.split("\n\n").filter((m) => /^event:/m.test(m)).length
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  let text = ""
  const deadline = Date.now() + 10_000
  const events = () => text.split("\n\n").filter((m) => /^event:/m.test(m)).length
  let during: Promise<void> | undefined
  while (events() < Math.max(1, wanted) && Date.now() < deadline) {
    const chunk = await Promise.race([reader.read(), Bun.sleep(deadline - Date.now()).then(() => undefined)])
    if (chunk === undefined || chunk.done) break
    text += decoder.decode(chunk.value, { stream: true })
    // subscribed once `: open` arrived: what happens from then on is streamed
    if (during === undefined && text.includes("\n\n")) during = onOpen()
  }
  await during
  await reader.cancel()
  const messages = text.split("\n\n").filter((m) => m.trim() !== "")
  return messages.filter((m, i) => i === 0 || !m.startsWith(": ping")).join("\n\n")
}

/** An event stream's messages as comparable lines: ids (`<tx>-<id>`) by shape, data as JSON by `drift`. */
const streamDrift = (documented: string, actual: string): Array<string> => {
  const parse = (text: string) =>
    text
      .split("\n\n")
      .filter((m) => m.trim() !== "")
      .map((m) => m.replace(/(id: |"id":"|"position":"|open )\d+-\d+/g, "$1<event-id>"))
  const want = parse(documented)
  const got = parse(actual)
  if (want.length !== got.length)
    return [`documented ${want.length} messages, got ${got.length}: ${JSON.stringify(got)}`]
  return want.flatMap((w, i) => {
    const g = got[i]!
    const data = (m: string) =>
      m
        .split("\n")
        .find((l) => l.startsWith("data: "))
        ?.slice(6)
    const strip = (m: string) =>
      m
        .split("\n")
        .filter((l) => !l.startsWith("data: "))
        .join("\n")
    if (strip(w) !== strip(g))
      return [`message ${i}: documented ${JSON.stringify(w)}, got ${JSON.stringify(g)}`]
    const [dw, dg] = [data(w), data(g)]
    if (dw === undefined || dg === undefined) return dw === dg ? [] : [`message ${i}: data ${dw} / ${dg}`]
    return drift(JSON.parse(dw), JSON.parse(dg), `message ${i}`)
  })
}

// --- comparing -------------------------------------------------------------------------------------------

const uuid = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi
const timestamp = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})/g
const normalize = (text: string) => text.replace(uuid, "<id>").replace(timestamp, "<time>")
/** Numbers that differ between runs. */
const varyingNumbers = new Set(["retryDelayMs", "oldestReadyAgeSeconds", "oldestReadyAgeMs"])

/** Where the answer's body departs from the documented one, as readable lines. */
const drift = (documented: unknown, actual: unknown, path = "body"): Array<string> => {
  const differs = [`${path}: documented ${JSON.stringify(documented)}, got ${JSON.stringify(actual)}`]
  if (documented === null || actual === null) return documented === actual ? [] : differs
  if (Array.isArray(documented)) {
    if (!Array.isArray(actual) || actual.length !== documented.length) return differs
    return documented.flatMap((item, i) => drift(item, actual[i], `${path}[${i}]`))
  }
  if (typeof documented === "object") {
    if (typeof actual !== "object" || Array.isArray(actual)) return differs
    const missing = Object.keys(documented).filter((k) => !(k in actual))
    const unexpected = Object.keys(actual).filter((k) => !(k in documented))
    if (missing.length + unexpected.length > 0) {
      return [
        `${path}: documented keys missing from the answer ${missing}; keys not documented ${unexpected}`
      ]
    }
    return Object.entries(documented).flatMap(([key, value]) =>
      drift(value, (actual as Record<string, unknown>)[key], `${path}.${key}`)
    )
  }
  if (typeof documented !== typeof actual) return differs
  if (typeof documented === "string")
    return normalize(documented) === normalize(actual as string) ? [] : differs
  if (typeof documented === "number" && varyingNumbers.has(path.split(".").at(-1)!)) return []
  return documented === actual ? [] : differs
}

/** Headers worth showing (and checking) in an example's response. */
const shownHeaders = ["content-type", "idempotent-replayed", "retry-after", "allow", "www-authenticate"]

const toRequest = (example: Example, jobId: string | undefined) => {
  const [method = "GET", target = "/"] = example.request.startLine.split(/\s+/)
  const path = jobId === undefined ? target : target.replace(uuid, jobId)
  const body = example.request.body === "" ? undefined : example.request.body
  return new Request(`http://api.test${path}`, {
    method,
    headers: Object.fromEntries(example.request.headers),
    ...(body === undefined ? {} : { body })
  })
}

const statusText: Record<number, string> = {
  200: "OK",
  201: "Created",
  202: "Accepted",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  503: "Service Unavailable"
}

/** JSON with every object or array that fits in the line width on one line. */
const inline = (value: unknown): string =>
  Array.isArray(value)
    ? `[${value.map(inline).join(", ")}]`
    : value !== null && typeof value === "object"
      ? `{${Object.entries(value)
          .map(([k, v]) => `${JSON.stringify(k)}: ${inline(v)}`)
          .join(", ")}}`
      : JSON.stringify(value)
const pretty = (value: unknown, indent = ""): string => {
  const flat = inline(value)
  if (value === null || typeof value !== "object" || indent.length + flat.length <= 100) return flat
  const inner = `${indent}  `
  if (Array.isArray(value)) return `[\n${value.map((v) => inner + pretty(v, inner)).join(",\n")}\n${indent}]`
  const entries = Object.entries(value).map(([k, v]) => `${inner}${JSON.stringify(k)}: ${pretty(v, inner)}`)
  return `{\n${entries.join(",\n")}\n${indent}}`
}

const headerCase = (name: string) =>
  name === "www-authenticate"
    ? "WWW-Authenticate"
    : name.replace(/(^|-)(\w)/g, (_, dash: string, c: string) => dash + c.toUpperCase())

/** The response block's content for the answer: status line, shown headers, body. */
const render = (
  response: Response,
  body: string,
  documented: Message,
  jobId: string | undefined,
  docId?: string
) => {
  const headers = shownHeaders
    .filter((name) => response.headers.has(name))
    .map((name) => `${headerCase(name)}: ${response.headers.get(name)}`)
  let text = body
  const type = response.headers.get("content-type") ?? ""
  if (type.includes("json")) text = pretty(JSON.parse(body))
  else if (type.startsWith("text/event-stream")) text = body
  else if (type.startsWith("text/plain")) {
    // keep the documented excerpt; a new one starts from the queue's own metric types
    text =
      documented.body !== ""
        ? documented.body
        : body
            .split("\n")
            .filter((line) => /^# TYPE jobq_/.test(line))
            .join("\n")
  }
  if (jobId !== undefined && docId !== undefined) text = text.replaceAll(jobId, docId)
  return `HTTP/1.1 ${response.status} ${statusText[response.status] ?? ""}\n${headers.join("\n")}\n\n${text}\n`
}

// --- the tests -------------------------------------------------------------------------------------------

const updates: Array<{ readonly at: readonly [number, number]; readonly text: string }> = []

describe("docs/api.md examples", () => {
  it("has an example for every endpoint of the contract, and a setup for every example", () => {
    const routes = RouteTable.fromApi(makeApi(demoKinds))
    const match = RouteTable.make(routes)
    const covered = new Set(
      examples.map((e) => {
        const [method = "", target = ""] = e.request.startLine.split(/\s+/)
        const m = match(method, new URL(target, "http://api.test").pathname)
        return m._tag === "Matched" ? `${method} ${m.route}` : ""
      })
    )
    expect(routes.map((r) => `${r.method} ${r.path}`).filter((r) => !covered.has(r))).toEqual([])
    expect(examples.map((e) => e.name).filter((name) => setups[name] === undefined)).toEqual([])
    expect(Object.keys(setups).filter((name) => !examples.some((e) => e.name === name))).toEqual([])
  })

  for (const example of examples) {
    it(example.name, async () => {
      const jobId = await setups[example.name]!()
      const handler = servers[example.name] ?? api.handler
      const response = await handler(toRequest(example, jobId))
      const streaming = (response.headers.get("content-type") ?? "").startsWith("text/event-stream")
      const body = streaming
        ? await readEventStream(response, example.response.body, () =>
            (whileStreaming[example.name] ?? (async () => {}))(jobId)
          )
        : await response.text()
      if (updating) {
        const docId = example.request.startLine.match(uuid)?.[0]
        updates.push({ at: example.responseAt, text: render(response, body, example.response, jobId, docId) })
        return
      }
      const [, status] = example.response.startLine.split(/\s+/)
      expect(`${example.name}: ${response.status}`).toBe(`${example.name}: ${status}`)
      for (const [name, value] of example.response.headers) {
        const got = response.headers.get(name) ?? "(absent)"
        expect(`${name}: ${name === "content-type" ? got.split(";")[0] : got}`).toBe(
          `${name}: ${name === "content-type" ? value.split(";")[0] : value}`
        )
      }
      const type = response.headers.get("content-type") ?? ""
      if (type.includes("json")) {
        expect(drift(JSON.parse(example.response.body), JSON.parse(body))).toEqual([])
      } else if (streaming) {
        expect(streamDrift(example.response.body, body)).toEqual([])
      } else {
        // text (Prometheus): each documented line is there, up to its value
        const lines = body.split("\n")
        const missing = example.response.body
          .split("\n")
          .filter((line) => line.trim() !== "")
          .filter((line) => {
            const prefix = line.startsWith("#") ? line : line.slice(0, line.lastIndexOf(" ") + 1)
            return !lines.some((l) => l.startsWith(prefix))
          })
        expect(missing).toEqual([])
      }
    })
  }

  if (updating) {
    it("rewrites the documented responses (UPDATE_DOC_EXAMPLES=1)", () => {
      let text = markdown
      for (const { at, text: block } of [...updates].sort((a, b) => b.at[0] - a.at[0])) {
        text = text.slice(0, at[0]) + block + text.slice(at[1])
      }
      writeFileSync(docPath, text)
    })
  }
})
