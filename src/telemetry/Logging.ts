/**
 * Logs as one JSON object per line: level, message, timestamp, the trace and span ids of the current
 * span (so a log line can be found from a trace and back), and the annotations (module, fiber, jobId...).
 * `LOG_LEVEL` (trace, debug, info, warn, error, fatal, none, in any case; default info) sets the minimum
 * level; `LOG_FORMAT=pretty` switches to Effect's human-readable console logger for development.
 */
import { Context, Effect, Layer, Logger, References, Tracer } from "effect"
import { loggingSettings } from "../Config.ts"

/** The span a log line names: none when tracing is off (Effect then makes placeholder spans, ids "noop"). */
const currentSpan = (context: Context.Context<never>) => {
  const span = Context.getOrUndefined(context, Tracer.ParentSpan)
  if (span === undefined) return undefined
  return span._tag === "Span" && Context.get(span.annotations, Tracer.DisablePropagation) ? undefined : span
}

export const jsonLogger = Logger.make<unknown, void>((options) => {
  const { annotations, spans: _spans, fiberId: _fiberId, ...base } = Logger.formatStructured.log(options)
  const span = currentSpan(options.fiber.context)
  const line = {
    ...base,
    ...(span === undefined ? {} : { traceId: span.traceId, spanId: span.spanId }),
    ...annotations
  }
  globalThis.console.log(JSON.stringify(line))
})

export const layerFromEnv = Layer.unwrap(
  Effect.gen(function* () {
    const { level, format } = yield* loggingSettings
    return Layer.merge(
      Logger.layer([format === "json" ? jsonLogger : Logger.consolePretty()]),
      Layer.succeed(References.MinimumLogLevel, level)
    )
  })
)
