import { afterAll, describe, expect, it } from "bun:test"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Layer, ManagedRuntime } from "effect"
import { ApiConfig } from "../src/Config.ts"
import * as Database from "../src/db/Database.ts"
import { apiLayer, makeWebHandler } from "../src/http/handler.ts"
import { demoKinds } from "../src/kinds/DemoKinds.ts"
import * as Tracing from "../src/telemetry/Tracing.ts"
import * as Worker from "../src/worker/index.ts"
import { freshDatabase } from "./support/database.ts"
import { waitFor } from "./support/runtime.ts"

// The API and the worker each get their own tracer provider, as two processes would; both export here.
const exporter = new InMemorySpanExporter()
const db = await freshDatabase(import.meta.file)
const { handler, dispose } = makeWebHandler(
  apiLayer(demoKinds).pipe(
    Layer.provide(Database.layerUrl(db.url)),
    Layer.provide(ApiConfig.layer()),
    // provideMerge: the web handler runs requests with the services its layer outputs
    Layer.provideMerge(Tracing.layer("jobq-api", new SimpleSpanProcessor(exporter)))
  )
)
const worker = ManagedRuntime.make(
  Worker.layer({ kinds: demoKinds, settings: { concurrency: 2 } }).pipe(
    Layer.provide(Database.layerUrl(db.url)),
    Layer.provide(Tracing.layer("jobq-worker", new SimpleSpanProcessor(exporter)))
  )
)
afterAll(async () => {
  await worker.dispose()
  await dispose()
  await db.drop()
})

const parentOf = (span: ReadableSpan) =>
  exporter.getFinishedSpans().find((s) => s.spanContext().spanId === span.parentSpanContext?.spanId)

describe("one trace from the HTTP request to the job's execution", () => {
  it("POST /jobs -> Queue.enqueue -> (wait) -> jobq.job.execute share a trace, execution a child of enqueue", async () => {
    await worker.runPromise(Worker.WorkerPool.use((pool) => pool.wake))
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736"
    const response = await handler(
      new Request("http://api.test/jobs", {
        method: "POST",
        headers: {
          "content-type": "application/json",
          // the caller's own trace: the request span continues it
          traceparent: `00-${traceId}-00f067aa0ba902b7-01`
        },
        body: JSON.stringify({ kind: "sleep", payload: { ms: 5 } })
      })
    )
    expect(response.status).toBe(201)
    const { id } = (await response.json()) as { id: string }

    const execution = await waitFor("the job's execution span", async () =>
      exporter
        .getFinishedSpans()
        .find((s) => s.name === "jobq.job.execute" && s.attributes["jobq.job.id"] === id)
    )
    expect(execution.spanContext().traceId).toBe(traceId)
    const enqueue = parentOf(execution)!
    expect(enqueue.name).toBe("Queue.enqueue")
    const request = parentOf(enqueue)!
    expect(request.spanContext().traceId).toBe(traceId)
    expect(request.parentSpanContext?.spanId).toBe("00f067aa0ba902b7")
    expect(request.attributes["http.request.method"]).toBe("POST")
    expect(execution.attributes).toMatchObject({
      "jobq.job.kind": "sleep",
      "jobq.job.queue": "default",
      "jobq.job.attempt": 1,
      "jobq.job.outcome": "succeeded"
    })
    expect(Number(execution.attributes["jobq.job.queue_wait_ms"])).toBeGreaterThanOrEqual(0)
    // the statements of the enqueue are spans of the same trace too
    expect(
      exporter
        .getFinishedSpans()
        .some((s) => s.name === "postgres" && s.parentSpanContext?.spanId === enqueue.spanContext().spanId)
    ).toBe(true)
  })
})
