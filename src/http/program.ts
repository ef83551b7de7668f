/**
 * The API program's layers, configured from the environment: the routes for the kinds of JOBS_MODULE,
 * served by Bun.serve on PORT. Needs the database and telemetry layers.
 */
import { Effect, Layer } from "effect"
import { HttpRouter } from "effect/http"
import { ApiConfig } from "../Config.ts"
import { JobKinds } from "../domain/JobKind.ts"
import * as KindsFromEnv from "../domain/kindsFromEnv.ts"
import * as BunServer from "./BunServer.ts"
import { apiLayer } from "./handler.ts"
import { routerConfig } from "./Routes.ts"

export const layerFromEnv = Layer.unwrap(
  Effect.gen(function* () {
    const { port } = yield* ApiConfig
    const kinds = yield* JobKinds
    yield* Effect.logInfo(
      `jobq API on http://localhost:${port} (Swagger UI http://localhost:${port}/docs), kinds: ${kinds.names.join(", ")}`
    )
    return HttpRouter.serve(apiLayer(kinds.all), { disableLogger: true, routerConfig }).pipe(
      Layer.provide(BunServer.layer({ port }))
    )
  })
).pipe(Layer.provide(KindsFromEnv.layer), Layer.provide(ApiConfig.fromEnv))
