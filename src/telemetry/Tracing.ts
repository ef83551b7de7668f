/**
 * Trace export through `@effect/opentelemetry`: OTLP over HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, configured by the standard OTEL_* variables
 * (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, headers, timeouts, `OTEL_EXPORTER_OTLP_PROTOCOL`:
 * `http/json`, our default, or `http/protobuf`; `grpc` is refused at startup). Unset, tracing is off: Effect
 * makes no spans at all (`References.TracerEnabled`), nothing is exported or stored. Its built-in tracer
 * would otherwise still make a span, with a stack trace, for every request, SQL statement and queue call,
 * for nobody: 8-10% of the API's CPU per `POST /jobs`.
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { OTLPTraceExporter as JsonExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { OTLPTraceExporter as ProtobufExporter } from "@opentelemetry/exporter-trace-otlp-proto"
import { BatchSpanProcessor, type Sampler, type SpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Config, Effect, Layer, Option, References, Tracer } from "effect"
import { invalidSetting } from "../Config.ts"
import { CaptureTraceContext } from "./TraceContext.ts"

/**
 * The OpenTelemetry tracer without its per-operation context hook. The hook makes the current span the
 * active OpenTelemetry context around every single Effect operation, for OpenTelemetry instrumentation
 * running outside Effect. Nothing here registers an OpenTelemetry context manager, so that work had no
 * effect (the no-op manager ignores it) and cost a quarter of the worker's drain throughput with tracing
 * on, sampled or not. Every span of ours is an Effect span; the context that crosses processes travels in
 * the job row. An application that registers a context manager for auto-instrumented libraries should use
 * `@effect/opentelemetry`'s own layer instead of this one.
 */
const withoutOtelContextHook = Layer.effect(
  Tracer.Tracer,
  Effect.map(Effect.tracer, (otel) => Tracer.make({ span: (options) => otel.span(options) }))
)

/**
 * Tracing with the given span processor (tests pass an in-memory exporter's). The sampler is the one
 * OTEL_TRACES_SAMPLER names (the SDK's default: parent-based, always on) unless one is given.
 */
export const layer = (serviceName: string, spanProcessor: SpanProcessor, sampler?: Sampler) =>
  Layer.merge(
    withoutOtelContextHook.pipe(
      Layer.provideMerge(
        NodeSdk.layer(() => ({
          resource: { serviceName },
          spanProcessor,
          ...(sampler === undefined ? {} : { tracerConfig: { sampler } })
        }))
      )
    ),
    Layer.succeed(CaptureTraceContext, true)
  )

/** No spans: what the programs run with when no OTLP endpoint is configured. */
export const off = Layer.succeed(References.TracerEnabled, false)

/**
 * The exporter `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` (or `OTEL_EXPORTER_OTLP_PROTOCOL`) names. The
 * specification's default is `http/protobuf`; ours is `http/json`, which every OTLP/HTTP receiver also
 * takes and which cost our worker no more CPU per span. `grpc` (port 4317) would need another exporter and
 * its native dependencies: refused at startup rather than sent to a port that does not speak HTTP.
 */
const exporterFromEnv = Effect.gen(function* () {
  const general = yield* Config.option(Config.String("OTEL_EXPORTER_OTLP_PROTOCOL"))
  const traces = yield* Config.option(Config.String("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
  const protocol = Option.getOrElse(
    Option.orElse(traces, () => general),
    () => "http/json"
  ).trim()
  if (protocol === "http/json") return new JsonExporter()
  if (protocol === "http/protobuf") return new ProtobufExporter()
  return yield* invalidSetting(
    `OTLP protocol ${JSON.stringify(protocol)} (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL) is not supported: use http/json or http/protobuf, with the receiver's OTLP/HTTP port (4318 by convention)`
  )
})

export const layerFromEnv = (defaultServiceName: string) =>
  Layer.unwrap(
    Effect.gen(function* () {
      const endpoint = yield* Config.option(Config.String("OTEL_EXPORTER_OTLP_ENDPOINT"))
      const tracesEndpoint = yield* Config.option(Config.String("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
      if (Option.isNone(endpoint) && Option.isNone(tracesEndpoint)) return off
      const serviceName = yield* Config.String("OTEL_SERVICE_NAME").pipe(
        Config.withDefault(defaultServiceName)
      )
      return layer(serviceName, new BatchSpanProcessor(yield* exporterFromEnv))
    })
  )
