/**
 * The API as a web-standard `(Request) => Promise<Response>`, for any fetch-style server or host (see
 * docs/api.md, "Mounting the handler"), or a test:
 *
 *   const { handler, dispose } = makeWebHandler(
 *     apiLayer(kinds).pipe(Layer.provide(Database.layerUrl(url)), Layer.provide(ApiConfig.layer()))
 *   )
 *   export default { fetch: handler }
 */
import { Layer } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import type { JobKind } from "../domain/JobKind.ts"
import * as QueueLayer from "../queue/layer.ts"
import { Prometheus } from "../telemetry/Prometheus.ts"
import * as Routes from "./Routes.ts"

/** The routes with the queue and the metrics exporter; still needs the database and `ApiConfig`. */
export const apiLayer = (kinds: ReadonlyArray<JobKind>) =>
  Routes.layer(kinds).pipe(
    Layer.provide(QueueLayer.layer(kinds)),
    Layer.provide(Prometheus.layer("jobq-api"))
  )

/** Serves a routes layer (`apiLayer` with its dependencies provided) as a web handler. */
export const makeWebHandler = <E>(
  routes: Layer.Layer<never, E, HttpRouter.HttpRouter | Layer.Success<typeof HttpServer.layerServices>>
) =>
  HttpRouter.toWebHandler(routes.pipe(Layer.provide(HttpServer.layerServices)), {
    disableLogger: true,
    routerConfig: Routes.routerConfig
  })
