/**
 * The API program's layers, configured from the environment: the routes for the kinds of JOBS_MODULE,
 * served on PORT by the runtime's own server (src/platform/Server.ts). Needs the database and telemetry layers.
 */
import { Effect, Layer } from "effect"
import { HttpRouter } from "effect/http"
import { ApiConfig, EventsConfig, PayloadConfig } from "../Config.ts"
import { type JobKind, JobKinds } from "../domain/JobKind.ts"
import * as KindsFromEnv from "../kinds/fromEnv.ts"
import * as Listen from "../platform/Listen.ts"
import { apiLayer } from "./handler.ts"
import { maxWaitSeconds } from "./JobSchemas.ts"
import { routerConfig } from "./Routes.ts"

/**
 * The server's own limits (Bun's; Node and Deno have neither), set so that every answer comes from the API:
 *
 * - no body limit of Bun's: it answers a `Content-Length` over its limit (128 MiB by default) with a bare
 *   413 before the API sees the request. `MAX_BODY_BYTES` is enforced by the API on every body it reads
 *   (a declared length over it is refused before a byte is read), and a body it does not read is not
 *   buffered.
 * - a connection waiting for its answer stays open for 90 s, not Bun's 10 s: a wait for a job
 *   (`GET /jobs/{id}/wait`, `POST /jobs?wait=`) lasts up to a minute, then reads the job once more; a request
 *   waits at most `API_DATABASE_ACQUIRE_TIMEOUT` for the database, and Postgres bounds its statements, but
 *   statements pipelined behind one that waits on a lock wait in turn; closing the connection would leave
 *   the client without the 503 that tells it nothing happened.
 */
const serverLimits = { maxRequestBodySize: Number.MAX_SAFE_INTEGER, idleTimeout: maxWaitSeconds + 30 }

/** The API for `kinds` on this runtime's server; needs the database and `ApiConfig`. */
export const serve = (kinds: ReadonlyArray<JobKind>, options: { readonly port: number }) =>
  HttpRouter.serve(apiLayer(kinds), { disableLogger: true, routerConfig }).pipe(
    Layer.provide(Listen.layer("PORT", options.port, serverLimits))
  )

export const layerFromEnv = Layer.unwrap(
  Effect.gen(function* () {
    const { port } = yield* ApiConfig
    const kinds = yield* JobKinds
    yield* Effect.logInfo(
      `jobq API on http://localhost:${port} (Swagger UI http://localhost:${port}/docs), kinds: ${kinds.names.join(", ")}`
    )
    return serve(kinds.all, { port })
  })
).pipe(
  Layer.provide(KindsFromEnv.layer),
  Layer.provide(ApiConfig.fromEnv),
  Layer.provide(PayloadConfig.fromEnv),
  Layer.provide(EventsConfig.fromEnv)
)
