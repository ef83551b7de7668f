import { afterAll, describe, expect, it } from "bun:test"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { Queue } from "../src/queue/Queue.ts"
import { kinds } from "./fixtures/recordingKinds.ts"
import { freePort } from "./support/ports.ts"
import { exited, spawnWorker } from "./support/processes.ts"
import { setupQueueTests, waitFor } from "./support/runtime.ts"

const { db, run } = await setupQueueTests(import.meta.file, kinds)

// A tiny OTLP/HTTP receiver: it keeps the span names of every JSON export it is sent, and the raw body of
// every protobuf one.
const received: Array<{ service: string; spans: Array<string>; traceIds: Array<string> }> = []
const protobufBodies: Array<Buffer> = []
const receiver = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  fetch: async (request) => {
    const url = new URL(request.url)
    if (request.method !== "POST" || url.pathname !== "/v1/traces") return new Response("no", { status: 404 })
    if (request.headers.get("content-type") === "application/x-protobuf") {
      protobufBodies.push(Buffer.from(await request.arrayBuffer()))
      return new Response(new Uint8Array(0), { headers: { "content-type": "application/x-protobuf" } })
    }
    const body = (await request.json()) as {
      resourceSpans?: Array<{
        resource?: { attributes?: Array<{ key: string; value: { stringValue?: string } }> }
        scopeSpans?: Array<{ spans?: Array<{ name: string; traceId: string }> }>
      }>
    }
    for (const rs of body.resourceSpans ?? []) {
      const service = rs.resource?.attributes?.find((a) => a.key === "service.name")?.value.stringValue ?? "?"
      const spans = (rs.scopeSpans ?? []).flatMap((s) => s.spans ?? [])
      received.push({ service, spans: spans.map((x) => x.name), traceIds: spans.map((x) => x.traceId) })
    }
    return Response.json({})
  }
})
afterAll(() => receiver.stop(true))

/**
 * A worker exporting to the receiver (with `env` besides) while one no-op job is enqueued; `check` runs
 * while it is up, and the worker is stopped after.
 */
const withExportingWorker = async (id: string, env: Record<string, string>, check: () => Promise<void>) => {
  const worker = spawnWorker(db.url, id, {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`,
    OTEL_BSP_SCHEDULE_DELAY: "100",
    ...env
  })
  try {
    await run(Queue.use((q) => q.enqueue({ kind: "noop", payload: {} })))
    await check()
  } finally {
    worker.process.kill("SIGTERM")
    await exited(worker)
  }
}

describe("OTLP export", () => {
  it("a worker sends its spans to OTEL_EXPORTER_OTLP_ENDPOINT, named by OTEL_SERVICE_NAME", async () => {
    await withExportingWorker("otlp", { OTEL_SERVICE_NAME: "jobq-worker-under-test" }, async () => {
      const execution = await waitFor(
        "an exported jobq.job.execute span",
        async () => received.find((r) => r.spans.includes("jobq.job.execute")),
        { timeoutMs: 15_000 }
      )
      expect(execution.service).toBe("jobq-worker-under-test")
      expect(received.flatMap((r) => r.spans)).toContain("jobq.claim")
    })
  })

  it("OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf exports OTLP protobuf instead of JSON", async () => {
    const env = { OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf", OTEL_SERVICE_NAME: "jobq-protobuf-worker" }
    await withExportingWorker("otlp-protobuf", env, async () => {
      // protobuf keeps strings as UTF-8 bytes: the span's name and the service's are in the body as such
      const body = await waitFor(
        "a protobuf export with a jobq.job.execute span",
        async () => protobufBodies.find((b) => b.includes("jobq.job.execute")),
        { timeoutMs: 15_000 }
      )
      expect(body.includes("jobq-protobuf-worker")).toBe(true)
      expect(received.some((r) => r.service === "jobq-protobuf-worker")).toBe(false)
    })
  })

  it("OTEL_EXPORTER_OTLP_PROTOCOL=grpc stops the worker at startup, saying what is supported", async () => {
    const worker = spawnWorker(db.url, "otlp-grpc", {
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4317",
      OTEL_EXPORTER_OTLP_PROTOCOL: "grpc"
    })
    expect(await exited(worker)).not.toBe(0)
    const output = (await Bun.file(worker.logFile).text()) + (await Bun.file(`${worker.logFile}.err`).text())
    expect(output).toContain("http/json or http/protobuf")
  })

  it("the API exports its request spans, continuing the caller's traceparent", async () => {
    const apiPort = freePort()
    const api = Bun.spawn([process.execPath, "src/api.ts"], {
      cwd: new URL("..", import.meta.url).pathname,
      env: {
        ...process.env,
        DATABASE_URL: db.url,
        PORT: String(apiPort),
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`,
        OTEL_BSP_SCHEDULE_DELAY: "100"
      },
      stdout: "ignore",
      stderr: "ignore"
    })
    try {
      const traceId = "0af7651916cd43dd8448eb211c80319c"
      const response = await waitFor("the API to take a job", () =>
        fetch(`http://127.0.0.1:${apiPort}/jobs`, {
          method: "POST",
          headers: { "content-type": "application/json", traceparent: `00-${traceId}-b7ad6b7169203331-01` },
          body: JSON.stringify({ kind: "noop", payload: {}, queue: "traced-api" })
        })
          // listening but not yet serving the app answers 503 "starting": that is not an answer yet
          .then((r) => (r.status === 503 ? undefined : r))
          .catch(() => undefined)
      )
      expect(response.status).toBe(201)
      const exported = await waitFor(
        "the API's spans of that trace",
        async () => received.find((r) => r.service === "jobq-api" && r.traceIds.includes(traceId)),
        { timeoutMs: 15_000 }
      )
      expect(exported.spans).toContain("Queue.enqueue")
    } finally {
      api.kill("SIGTERM")
      await api.exited
    }
  })

  it("with tracing off (no endpoint), an enqueue inside a span stores no trace context", async () => {
    const { job } = await run(
      Queue.use((q) => q.enqueue({ kind: "noop", payload: {}, queue: "untraced" })).pipe(
        Effect.withSpan("request")
      )
    )
    const rows = await run(
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) => sql<{ traceContext: unknown }>`
        SELECT trace_context AS "traceContext" FROM jobs WHERE id = ${job.id}`
      )
    )
    expect(rows).toEqual([{ traceContext: null }])
  })
})
