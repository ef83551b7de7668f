/**
 * Effect metrics exported through `@effect/opentelemetry` and serialised as Prometheus text by
 * `@opentelemetry/exporter-prometheus`, for our own `/metrics` routes (no second HTTP server).
 */
import * as OtelMetrics from "@effect/opentelemetry/OtelMetrics"
import * as OtelResource from "@effect/opentelemetry/Resource"
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus"
import { Context, Effect, Layer } from "effect"

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
                Effect.map(({ resourceMetrics }) => serializer.serialize(resourceMetrics))
              )
            })
          )
        )
      })
    )
}
