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
import { Effect, Layer, References, Tracer } from "effect"
import { tracingSettings } from "../Config.ts"
import { CaptureTraceContext } from "../queue/TraceContext.ts"

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
 * The exporter the settings name (`tracingSettings`). The specification's default is `http/protobuf`; ours
 * is `http/json`, which every OTLP/HTTP receiver also takes and which cost our worker no more CPU per span.
 * `grpc` (port 4317) would need another exporter and its native dependencies: refused at startup rather than
 * sent to a port that does not speak HTTP.
 */
export const layerFromEnv = (defaultServiceName: string) =>
  Layer.unwrap(
    Effect.gen(function* () {
      const settings = yield* tracingSettings(defaultServiceName)
      if (settings === undefined) return off
      const exporter = settings.protocol === "http/json" ? new JsonExporter() : new ProtobufExporter()
      return layer(settings.serviceName, new BatchSpanProcessor(exporter))
    })
  )
