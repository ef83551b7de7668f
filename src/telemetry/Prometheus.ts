/**
 * Effect metrics exported through `@effect/opentelemetry` and serialised as Prometheus text by
 * `@opentelemetry/exporter-prometheus`, for our own `/metrics` routes (no second HTTP server).
 */
import * as OtelMetrics from "@effect/opentelemetry/OtelMetrics"
import * as OtelResource from "@effect/opentelemetry/Resource"
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus"
import type { ResourceMetrics } from "@opentelemetry/sdk-metrics"
import { Context, Effect, Layer } from "effect"

/**
 * Each family's unit from its name: `seconds` for `_seconds` families (histograms and the queue age gauge),
 * none for the rest (counts: their `# UNIT` line is left out). The bridge declares every metric with unit
 * "1", so a `_seconds` histogram said it counted ones.
 */
const withUnits = (metrics: ResourceMetrics): ResourceMetrics => ({
  ...metrics,
  scopeMetrics: metrics.scopeMetrics.map((scope) => ({
    ...scope,
    metrics: scope.metrics.map((metric) => ({
      ...metric,
      descriptor: { ...metric.descriptor, unit: metric.descriptor.name.endsWith("_seconds") ? "seconds" : "" }
    }))
  }))
})

export class Prometheus extends Context.Service<
  Prometheus,
  {
    /** The current metrics in Prometheus text exposition format 0.0.4. */
    readonly scrape: Effect.Effect<string>
  }
>()("jobq/telemetry/Prometheus") {
  static readonly contentType = "text/plain; version=0.0.4; charset=utf-8"

  static readonly layer = (serviceName: string) =>
    Layer.unwrap(
      Effect.sync(() => {
        const exporter = new PrometheusExporter({ preventServerStart: true })
        const serializer = new PrometheusSerializer()
        return Layer.merge(
          OtelMetrics.layer(() => exporter).pipe(Layer.provide(OtelResource.layer({ serviceName }))),
          Layer.succeed(
            Prometheus,
            Prometheus.of({
              scrape: Effect.promise(() => exporter.collect()).pipe(
                Effect.map(({ resourceMetrics }) => serializer.serialize(withUnits(resourceMetrics)))
              )
            })
          )
        )
      })
    )
}
