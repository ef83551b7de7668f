/**
 * `npm run api` (Bun), `npm run api:node`, `npm run api:deno`: the HTTP API on PORT (default 8080), served
 * by the runtime's own server (src/platform/Server.ts). Deno needs `--allow-net --allow-env` only.
 * SIGTERM/SIGINT interrupt the main fiber: the server stops accepting, in-flight requests finish, the pool
 * closes. Settings: DATABASE_URL (behind PgBouncer: DATABASE_POOLER, DATABASE_LISTEN_URL), PORT, API_TOKENS,
 * MAX_BODY_BYTES, MAX_PAYLOAD_DEPTH, JOBS_MODULE, LOG_*, OTEL_* (.env.example).
 */
import { Layer } from "effect"
import { DatabaseConfig } from "./Config.ts"
import * as Database from "./db/Database.ts"
import * as ApiProgram from "./http/program.ts"
import * as Main from "./platform/Main.ts"
import * as Logging from "./telemetry/Logging.ts"
import * as Tracing from "./telemetry/Tracing.ts"

const ApiLive = ApiProgram.layerFromEnv.pipe(
  Layer.provide(Database.layerFromEnv("jobq-api", DatabaseConfig.apiDefaults)),
  // OTLP traces when OTEL_EXPORTER_OTLP_ENDPOINT is set: enqueued jobs then carry the request's trace
  Layer.provide(Tracing.layerFromEnv("jobq-api")),
  Layer.provide(Logging.layerFromEnv)
)

Main.runMain(Layer.launch(ApiLive))
