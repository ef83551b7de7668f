/**
 * Logs as one JSON object per line: level, message, timestamp, the trace and span ids of the current
 * span (so a log line can be found from a trace and back), and the annotations (module, fiber, jobId...).
 * `LOG_LEVEL` (trace, debug, info, warn, error, fatal, none, in any case; default info) sets the minimum
 * level; `LOG_FORMAT=pretty` switches to Effect's human-readable console logger for development.
 */
import { Config, Context, Effect, Layer, Logger, type LogLevel, References, Tracer } from "effect"
import { invalidSetting } from "../Config.ts"

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

const levels = {
  all: "All",
  trace: "Trace",
  debug: "Debug",
  info: "Info",
  warn: "Warn",
  warning: "Warn",
  error: "Error",
  fatal: "Fatal",
  none: "None"
} as const satisfies Record<string, LogLevel.LogLevel>

/**
 * The value of `name` among `choices`, in any case (`warn`, `WARN`, `Warn`: every tool spells levels its
 * own way); anything else fails naming the variable and its choices.
 */
const choice = <A>(
  name: string,
  choices: Readonly<Record<string, A>>,
  fallback: keyof typeof choices & string
) =>
  Effect.gen(function* () {
    const given = yield* Config.String(name).pipe(Config.withDefault(fallback))
    const key = given.trim().toLowerCase()
    if (Object.hasOwn(choices, key)) return choices[key]!
    return yield* invalidSetting(
      `${name}=${JSON.stringify(given)} is not one of ${Object.keys(choices).join(", ")} (any case)`
    )
  })

export const layerFromEnv = Layer.unwrap(
  Effect.gen(function* () {
    const level = yield* choice("LOG_LEVEL", levels, "info")
    const format = yield* choice("LOG_FORMAT", { json: "json", pretty: "pretty" } as const, "json")
    return Layer.merge(
      Logger.layer([format === "json" ? jsonLogger : Logger.consolePretty()]),
      Layer.succeed(References.MinimumLogLevel, level)
    )
  })
)
