/**
 * Trace export through `@effect/opentelemetry`: OTLP over HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, configured by the standard OTEL_* variables
 * (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, headers, timeouts). Unset, this is `Layer.empty`:
 * Effect's built-in tracer stays in place and nothing is exported or stored.
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { BatchSpanProcessor, type SpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Config, Effect, Layer, Option } from "effect"
import { CaptureTraceContext } from "./TraceContext.ts"

/** Tracing with the given span processor (tests pass an in-memory exporter's). */
export const layer = (serviceName: string, spanProcessor: SpanProcessor) =>
  Layer.merge(
    NodeSdk.layer(() => ({ resource: { serviceName }, spanProcessor })),
    Layer.succeed(CaptureTraceContext, true)
  )

export const layerFromEnv = (defaultServiceName: string) =>
  Layer.unwrap(
    Effect.gen(function* () {
      const endpoint = yield* Config.option(Config.String("OTEL_EXPORTER_OTLP_ENDPOINT"))
      const tracesEndpoint = yield* Config.option(Config.String("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
      if (Option.isNone(endpoint) && Option.isNone(tracesEndpoint)) return Layer.empty
      const serviceName = yield* Config.String("OTEL_SERVICE_NAME").pipe(
        Config.withDefault(defaultServiceName)
      )
      return layer(serviceName, new BatchSpanProcessor(new OTLPTraceExporter()))
    })
  )
