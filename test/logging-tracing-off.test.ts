import { afterEach, describe, expect, it } from "bun:test"
import { ConfigProvider, Effect, Layer, Logger, References } from "effect"
import * as TraceContext from "../src/queue/TraceContext.ts"
import * as Logging from "../src/telemetry/Logging.ts"
import { jsonLogger } from "../src/telemetry/Logging.ts"
import * as Tracing from "../src/telemetry/Tracing.ts"

const originalLog = console.log
afterEach(() => {
  console.log = originalLog
})

/** The JSON lines `jsonLogger` prints while `effect` runs. */
const linesOf = async (effect: Effect.Effect<void>) => {
  const lines: Array<Record<string, unknown>> = []
  console.log = (text: string) => lines.push(JSON.parse(text))
  await Effect.runPromise(effect.pipe(Effect.provide(Logger.layer([jsonLogger]))))
  console.log = originalLog
  return lines
}

const logInSpan = Effect.logInfo("working").pipe(
  Effect.annotateLogs("jobId", "job-1"),
  Effect.withSpan("work")
)

describe("JSON logs", () => {
  it("carry level, message, annotations and the current span's ids", async () => {
    const [line] = await linesOf(logInSpan)
    expect(line).toMatchObject({ level: "INFO", message: "working", jobId: "job-1" })
    expect(line!.traceId).toMatch(/^[0-9a-f]{32}$/)
    expect(line!.spanId).toMatch(/^[0-9a-f]{16}$/)
  })

  it("name no span when tracing is off, and Effect makes none", async () => {
    const [line] = await linesOf(
      Effect.gen(function* () {
        expect(yield* References.TracerEnabled).toBe(false)
        yield* logInSpan
      }).pipe(Effect.provide(Tracing.off))
    )
    expect(line).toMatchObject({ level: "INFO", message: "working", jobId: "job-1" })
    expect(line).not.toHaveProperty("traceId")
    expect(line).not.toHaveProperty("spanId")
  })
})

describe("log settings from the environment", () => {
  const levelWith = (env: Record<string, string>) =>
    Effect.runPromise(
      Effect.exit(
        Effect.gen(function* () {
          return yield* References.MinimumLogLevel
        }).pipe(
          Effect.provide(
            Logging.layerFromEnv.pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env))))
          )
        )
      )
    )

  it("take LOG_LEVEL in any case, info by default", async () => {
    expect(await levelWith({})).toMatchObject({ _tag: "Success", value: "Info" })
    expect(await levelWith({ LOG_LEVEL: "warn" })).toMatchObject({ _tag: "Success", value: "Warn" })
    expect(await levelWith({ LOG_LEVEL: "DEBUG" })).toMatchObject({ _tag: "Success", value: "Debug" })
    expect(await levelWith({ LOG_LEVEL: "Error", LOG_FORMAT: "Pretty" })).toMatchObject({
      _tag: "Success",
      value: "Error"
    })
  })

  it("refuse an unknown LOG_LEVEL or LOG_FORMAT, naming the variable and its choices", async () => {
    for (const env of [{ LOG_LEVEL: "loud" }, { LOG_FORMAT: "xml" }]) {
      const exit = await levelWith(env)
      expect(exit._tag).toBe("Failure")
      const name = Object.keys(env)[0]!
      expect(String(exit._tag === "Failure" ? exit.cause : "")).toContain(`${name}=`)
    }
  })
})

describe("tracing from the environment", () => {
  const withEnv = (env: Record<string, string>) =>
    Tracing.layerFromEnv("test").pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env))))

  it("is off without OTEL_EXPORTER_OTLP_ENDPOINT: no spans, no trace context stored with jobs", async () => {
    const seen = await Effect.runPromise(
      Effect.gen(function* () {
        return {
          enabled: yield* References.TracerEnabled,
          carrier: yield* TraceContext.capture.pipe(Effect.withSpan("enqueue"))
        }
      }).pipe(Effect.provide(withEnv({})))
    )
    expect(seen).toEqual({ enabled: false, carrier: undefined })
  })
})
