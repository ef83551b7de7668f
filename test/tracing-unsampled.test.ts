import { afterAll, describe, expect, it } from "bun:test"
import {
  AlwaysOffSampler,
  InMemorySpanExporter,
  ParentBasedSampler,
  SimpleSpanProcessor
} from "@opentelemetry/sdk-trace-base"
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import * as Database from "../src/db/Database.ts"
import { defineKind } from "../src/domain/JobKind.ts"
import { demoKinds } from "../src/kinds/DemoKinds.ts"
import * as QueueLayer from "../src/queue/layer.ts"
import { Queue } from "../src/queue/Queue.ts"
import * as TraceContext from "../src/queue/TraceContext.ts"
import * as Tracing from "../src/telemetry/Tracing.ts"
import * as Worker from "../src/worker/index.ts"
import { freshDatabase } from "./support/database.ts"
import { waitFor } from "./support/runtime.ts"

/** Makes a span of its own and returns the trace context a job it enqueued would carry. */
const nested = defineKind({
  name: "nested",
  payload: Schema.Struct({}),
  handler: () =>
    Effect.gen(function* () {
      yield* Effect.void.pipe(Effect.withSpan("app.work"))
      return (yield* TraceContext.capture) ?? null
    })
})
const kinds = [...demoKinds, nested]

// every root span dropped: a job enqueued without a trace runs unsampled
const exporter = new InMemorySpanExporter()
const db = await freshDatabase(import.meta.file)
const runtime = ManagedRuntime.make(
  Layer.mergeAll(Worker.layer({ kinds, settings: { concurrency: 2 } }), QueueLayer.layer(kinds)).pipe(
    Layer.provideMerge(Database.layerUrl(db.url)),
    Layer.provideMerge(
      Tracing.layer(
        "jobq-test",
        new SimpleSpanProcessor(exporter),
        new ParentBasedSampler({ root: new AlwaysOffSampler() })
      )
    )
  )
)
afterAll(async () => {
  await runtime.dispose()
  await db.drop()
})

describe("a job whose execution span the sampler dropped", () => {
  it("records nothing, and hands the unsampled decision to its handler's spans and to the jobs it enqueues", async () => {
    const { job } = await runtime.runPromise(Queue.use((q) => q.enqueue({ kind: "nested", payload: {} })))
    const done = await waitFor("the job to succeed", async () => {
      const current = await runtime.runPromise(Queue.use((q) => q.get(job.id)))
      return current?.status === "succeeded" ? current : undefined
    })
    const carried = done.result as { traceparent?: string } | null
    expect(carried?.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/)
    const names = exporter.getFinishedSpans().map((s) => s.name)
    expect(names).not.toContain("jobq.job.execute")
    expect(names).not.toContain("app.work")
  })
})
