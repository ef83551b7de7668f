/**
 * The `jobq.job.execute` span of one attempt of one job: a child of the enqueuing span when the job carries
 * one (`TraceContext`), so one trace spans both processes.
 *
 * The pool makes it before the job's fiber starts and gives it to that fiber as its starting parent span,
 * instead of wrapping the attempt in `Effect.withSpan`: that plumbing (two context updates inside the fiber
 * and an exit hook) cost as much as the OpenTelemetry span itself. Inside the fiber it is the current span
 * as usual: a handler's spans are its children, its annotations land on it, its logs carry its ids.
 *
 * A job whose span the sampler dropped runs instead in one context shared by all such jobs, whose parent
 * span is an unsampled placeholder: a context of its own per job (and the fiber cache Effect derives from
 * it) cost 7% of a no-op drain's throughput, for a span that records nothing. What the placeholder keeps is
 * the decision: spans made inside the handler are unsampled too (their parent is), and a job the handler
 * enqueues carries the unsampled flag, so its execution is not traced either. Inside such a handler there
 * is no current span to annotate, which would record nothing anyway.
 */
import { Clock, Context, type Exit, Option, Tracer } from "effect"
import type { ClaimedJob } from "../queue/JobRepo.ts"
import { CaptureTraceContext, parentSpan } from "../queue/TraceContext.ts"

export interface ExecutionSpans {
  /** A started span for the job, or `undefined` when tracing is off. */
  readonly start: (job: ClaimedJob, queueWaitMs: number) => Tracer.Span | undefined
  /** The context to run the job's fiber with: `services` with the span (or, unsampled, the placeholder) as
   *  the parent span. */
  readonly contextFor: (span: Tracer.Span) => Context.Context<never>
  readonly setOutcome: (span: Tracer.Span, outcome: string) => void
  readonly end: (span: Tracer.Span, exit: Exit.Exit<unknown, unknown>) => void
}

/** Random lowercase hex digits (at most 32). */
const randomHex = (length: number) => crypto.randomUUID().replaceAll("-", "").slice(0, length)

/** Execution spans from the tracer in `services`; none without a tracing layer (no backend would see them). */
export const make = (services: Context.Context<never>): ExecutionSpans => {
  const tracer = Context.get(services, CaptureTraceContext) ? Context.get(services, Tracer.Tracer) : undefined
  const clock = Context.get(services, Clock.Clock)
  // a valid (non-zero) context: an invalid parent would count as none, and the sampler would decide afresh
  const unsampled = Context.add(
    services,
    Tracer.ParentSpan,
    Tracer.externalSpan({ traceId: randomHex(32), spanId: randomHex(16), sampled: false })
  )
  return {
    start: (job, queueWaitMs) => {
      if (tracer === undefined) return undefined
      const parent = parentSpan(job.traceContext)
      const span = tracer.span({
        name: "jobq.job.execute",
        parent: parent === undefined ? Option.none() : Option.some(parent),
        annotations: Context.empty(),
        links: [],
        startTime: clock.currentTimeNanosUnsafe(),
        kind: "consumer",
        root: parent === undefined,
        sampled: parent?.sampled ?? true
      })
      // an unsampled span records nothing: skip the attribute calls (a third of its cost)
      if (span.sampled) {
        span.attribute("jobq.job.id", job.id)
        span.attribute("jobq.job.kind", job.kind)
        span.attribute("jobq.job.queue", job.queue)
        span.attribute("jobq.job.attempt", job.attempts)
        span.attribute("jobq.job.queue_wait_ms", queueWaitMs)
      }
      return span
    },
    contextFor: (span) => (span.sampled ? Context.add(services, Tracer.ParentSpan, span) : unsampled),
    setOutcome: (span, outcome) => {
      if (span.sampled) span.attribute("jobq.job.outcome", outcome)
    },
    end: (span, exit) => span.end(clock.currentTimeNanosUnsafe(), exit)
  }
}
