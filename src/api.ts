/**
 * `bun run api`: the HTTP API on PORT (default 8080), served by Bun.serve through the web handler.
 * SIGTERM/SIGINT interrupt the main fiber: the server stops accepting, in-flight requests finish, the pool
 * closes. Settings: DATABASE_URL, PORT, API_TOKENS, MAX_BODY_BYTES, JOBS_MODULE, OTEL_* (docs/api.md).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { HttpRouter } from "effect/http"
import { ApiConfig } from "./Config.ts"
import * as Database from "./db/Database.ts"
import { JobKinds } from "./domain/JobKind.ts"
import * as KindsFromEnv from "./domain/kindsFromEnv.ts"
import * as BunServer from "./http/BunServer.ts"
import { apiLayer } from "./http/handler.ts"
import * as Tracing from "./telemetry/Tracing.ts"

const ApiLive = Layer.unwrap(
  Effect.gen(function* () {
    const { port } = yield* ApiConfig
    const kinds = yield* JobKinds
    yield* Effect.logInfo(`jobq API on :${port}, kinds: ${kinds.names.join(", ")}`)
    return HttpRouter.serve(apiLayer(kinds.all), { disableLogger: true }).pipe(
      Layer.provide(BunServer.layer({ port }))
    )
  })
).pipe(
  Layer.provide(KindsFromEnv.layer),
  Layer.provide(Database.layerFromEnv("jobq-api")),
  Layer.provide(ApiConfig.fromEnv),
  // OTLP traces when OTEL_EXPORTER_OTLP_ENDPOINT is set: enqueued jobs then carry the request's trace
  Layer.provide(Tracing.layerFromEnv("jobq-api"))
)

NodeRuntime.runMain(Layer.launch(ApiLive))
