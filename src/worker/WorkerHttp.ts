/** The worker's own small HTTP listener: `/metrics` (Prometheus text) and `/health`. */
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { SqlClient } from "effect/sql"
import { MetricsConfig } from "../Config.ts"
import * as Health from "../db/Health.ts"
import * as Listen from "../platform/Listen.ts"
import { Prometheus } from "../telemetry/Prometheus.ts"
import { WorkerPool } from "./WorkerPool.ts"

const routes = Layer.unwrap(
  Effect.gen(function* () {
    const prometheus = yield* Prometheus
    const sql = yield* SqlClient.SqlClient
    const pool = yield* WorkerPool
    const metrics = HttpRouter.add(
      "GET",
      "/metrics",
      Effect.map(prometheus.scrape, (body) =>
        HttpServerResponse.text(body, { contentType: Prometheus.contentType })
      )
    )
    const health = HttpRouter.add(
      "GET",
      "/health",
      Effect.gen(function* () {
        const running = (yield* pool.running).length
        return yield* Health.probe(sql).pipe(
          Effect.as(HttpServerResponse.jsonUnsafe({ status: "ok", workerId: pool.workerId, running })),
          Effect.catch((down) =>
            Effect.succeed(
              HttpServerResponse.jsonUnsafe(
                { status: "unavailable", workerId: pool.workerId, running, reason: down.reason },
                { status: 503, headers: { "retry-after": "5" } }
              )
            )
          )
        )
      })
    )
    return Layer.mergeAll(metrics, health)
  })
)

/** On WORKER_METRICS_PORT (default 9091); 0 turns the listener off so several workers can share a host. */
export const layer = Layer.unwrap(
  Effect.gen(function* () {
    const { workerPort: port } = yield* MetricsConfig
    if (port === 0) return Layer.empty
    return HttpRouter.serve(routes, { disableLogger: true }).pipe(
      Layer.provide(Listen.layer("WORKER_METRICS_PORT", port))
    )
  })
)
