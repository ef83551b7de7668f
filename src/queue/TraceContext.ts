/**
 * W3C trace context carried with a job from its enqueue to its execution. The enqueuing span is written
 * as a `traceparent` into the job row; the worker's execution span continues that trace as its child,
 * so one trace shows enqueue -> wait -> execute across processes.
 *
 * Capturing is off unless a tracing layer turns it on (`Tracing.layerFromEnv`): without an exporter there
 * is no trace to continue, and the row stays smaller.
 */
import { Context, Effect, Option, Tracer } from "effect"

export const CaptureTraceContext = Context.Reference<boolean>("jobq/telemetry/CaptureTraceContext", {
  defaultValue: () => false
})

export type TraceCarrier = Readonly<Record<string, string>>

/**
 * The current parent span as a `traceparent` carrier, when capture is on and there is one. An external
 * parent counts too: a job enqueued under a remote span, or by a job whose execution was not sampled,
 * continues that trace and keeps its sampling decision.
 */
export const capture: Effect.Effect<TraceCarrier | undefined> = Effect.gen(function* () {
  if (!(yield* CaptureTraceContext)) return undefined
  const span = yield* Effect.serviceOption(Tracer.ParentSpan)
  if (Option.isNone(span)) return undefined
  const { traceId, spanId, sampled } = span.value
  return { traceparent: `00-${traceId}-${spanId}-${sampled ? "01" : "00"}` }
})

const traceparent = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** The span a carrier names, to parent a span on. */
export const parentSpan = (carrier: TraceCarrier | null | undefined): Tracer.ExternalSpan | undefined => {
  const match = carrier?.traceparent === undefined ? null : traceparent.exec(carrier.traceparent)
  if (match === null) return undefined
  return Tracer.externalSpan({
    traceId: match[1]!,
    spanId: match[2]!,
    sampled: (Number.parseInt(match[3]!, 16) & 1) === 1
  })
}
