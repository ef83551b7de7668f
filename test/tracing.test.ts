import { afterAll, describe, expect, it } from "bun:test"
import { SpanStatusCode } from "@opentelemetry/api"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import * as Database from "../src/db/Database.ts"
import { defineKind, PermanentError } from "../src/domain/JobKind.ts"
import { demoKinds } from "../src/kinds/DemoKinds.ts"
import * as QueueLayer from "../src/queue/layer.ts"
import { Queue } from "../src/queue/Queue.ts"
import * as Tracing from "../src/telemetry/Tracing.ts"
import * as Worker from "../src/worker/index.ts"
import { freshDatabase } from "./support/database.ts"
import { waitFor } from "./support/runtime.ts"

/** A handler that makes its own span and annotates the current one. */
const traced = defineKind({
  name: "traced",
  payload: Schema.Struct({ fail: Schema.Boolean }),
  handler: ({ fail }) =>
    Effect.gen(function* () {
      yield* Effect.annotateCurrentSpan("app.step", "annotated by the handler")
      yield* Effect.void.pipe(Effect.withSpan("app.work"))
      if (fail) return yield* new PermanentError({ message: "no good" })
    })
})
const kinds = [...demoKinds, traced]

const exporter = new InMemorySpanExporter()
const db = await freshDatabase(import.meta.file)
const runtime = ManagedRuntime.make(
  Layer.mergeAll(Worker.layer({ kinds, settings: { concurrency: 2 } }), QueueLayer.layer(kinds)).pipe(
    Layer.provideMerge(Database.layerUrl(db.url)),
    Layer.provideMerge(Tracing.layer("jobq-test", new SimpleSpanProcessor(exporter)))
  )
)
afterAll(async () => {
  await runtime.dispose()
  await db.drop()
})

const spansNamed = (name: string) => exporter.getFinishedSpans().filter((s) => s.name === name)

describe("tracing", () => {
  it("a job's execution span continues the trace of the span that enqueued it", async () => {
    const job = await runtime.runPromise(
      Queue.use((q) => q.enqueue({ kind: "noop", payload: {} })).pipe(Effect.withSpan("test.request"))
    )
    const execution = await waitFor("the execution span", async () =>
      spansNamed("jobq.job.execute").find((s) => s.attributes["jobq.job.id"] === job.job.id)
    )
    const request = spansNamed("test.request")[0]!
    const enqueue = spansNamed("Queue.enqueue").find(
      (s) => s.spanContext().traceId === request.spanContext().traceId
    )!
    expect(execution.spanContext().traceId).toBe(request.spanContext().traceId)
    expect(execution.parentSpanContext?.spanId).toBe(enqueue.spanContext().spanId)
    expect(execution.attributes).toMatchObject({
      "jobq.job.kind": "noop",
      "jobq.job.queue": "default",
      "jobq.job.attempt": 1,
      "jobq.job.outcome": "succeeded"
    })
    expect(execution.attributes["jobq.job.queue_wait_ms"]).toBeGreaterThanOrEqual(0)
  })

  it("inside the handler the execution span is the current span: its spans are children, its annotations land on it", async () => {
    const job = await runtime.runPromise(
      Queue.use((q) => q.enqueue({ kind: "traced", payload: { fail: false } }))
    )
    const execution = await waitFor("the execution span", async () =>
      spansNamed("jobq.job.execute").find((s) => s.attributes["jobq.job.id"] === job.job.id)
    )
    const work = spansNamed("app.work").find(
      (s) => s.spanContext().traceId === execution.spanContext().traceId
    )
    expect(work?.parentSpanContext?.spanId).toBe(execution.spanContext().spanId)
    expect(execution.attributes["app.step"]).toBe("annotated by the handler")
    expect(execution.status.code).toBe(SpanStatusCode.OK)
  })

  it("a failed attempt ends its execution span as an error, with outcome failed", async () => {
    const job = await runtime.runPromise(
      Queue.use((q) => q.enqueue({ kind: "traced", payload: { fail: true } }))
    )
    const execution = await waitFor("the execution span", async () =>
      spansNamed("jobq.job.execute").find((s) => s.attributes["jobq.job.id"] === job.job.id)
    )
    expect(execution.attributes["jobq.job.outcome"]).toBe("failed")
    expect(execution.status.code).toBe(SpanStatusCode.ERROR)
    expect(execution.status.message).toContain("no good")
  })

  it("claims and SQL statements produce spans; the claim span parents its statement", async () => {
    const claim = await waitFor("a claim span", async () => spansNamed("jobq.claim")[0])
    expect(claim.attributes["jobq.claim.limit"]).toBeGreaterThan(0)
    const statement = exporter
      .getFinishedSpans()
      .find((s) => s.name === "postgres" && s.parentSpanContext?.spanId === claim.spanContext().spanId)
    expect(statement?.attributes["db.system.name"]).toBe("postgresql")
    expect(String(statement?.attributes["db.query.text"])).toContain("FOR UPDATE SKIP LOCKED")
  })
})
