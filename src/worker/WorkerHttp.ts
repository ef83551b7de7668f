/** The worker's own small HTTP listener: `/metrics` (Prometheus text) and `/health`. */
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { SqlClient } from "effect/sql"
import { MetricsConfig, WorkerConfig } from "../Config.ts"
import * as Health from "../db/Health.ts"
import * as Listen from "../platform/Listen.ts"
import { Prometheus } from "../telemetry/Prometheus.ts"
import { WorkerPool } from "./WorkerPool.ts"

/** The routes; `pool` is the pool once it is built (the listener serves before it: see `layer`). */
const routes = (pool: () => WorkerPool["Service"] | undefined) =>
  Layer.unwrap(
    Effect.gen(function* () {
      const prometheus = yield* Prometheus
      const sql = yield* SqlClient.SqlClient
      const { workerId } = yield* WorkerConfig
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
          const built = pool()
          const running = built === undefined ? 0 : (yield* built.running).length
          return yield* Health.probe(sql).pipe(
            Effect.as(HttpServerResponse.jsonUnsafe({ status: "ok", workerId, running })),
            Effect.catch((down) =>
              Effect.succeed(
                HttpServerResponse.jsonUnsafe(
                  { status: "unavailable", workerId, running, reason: down.reason },
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

/**
 * `pool` (a layer providing the `WorkerPool`) with its `/metrics` and `/health` on WORKER_METRICS_PORT
 * (default 9091; 0 turns the listener off so several workers can share a host). The listener binds and
 * serves first and the pool is built only then, on every runtime (Node loads its server module lazily,
 * src/platform/Server.ts): a worker whose port is taken exits with `Listen.PortInUse` before it claims a
 * job. Until the pool is up, /health reports no running jobs.
 */
export const layer = <A, E, R>(pool: Layer.Layer<A | WorkerPool, E, R>) =>
  Layer.unwrap(
    Effect.gen(function* () {
      const { workerPort: port } = yield* MetricsConfig
      if (port === 0) return pool
      let built: WorkerPool["Service"] | undefined
      const served = HttpRouter.serve(
        routes(() => built),
        { disableLogger: true }
      ).pipe(Layer.provide(Listen.layer("WORKER_METRICS_PORT", port)))
      const handOver = Layer.effectDiscard(
        Effect.gen(function* () {
          built = yield* WorkerPool
        })
      )
      return handOver.pipe(Layer.provideMerge(pool), Layer.provideMerge(served))
    })
  )
