/**
 * `npm run worker` (Bun), `npm run worker:node`, `npm run worker:deno`: the worker pool on DATABASE_URL,
 * until SIGTERM/SIGINT drains it.
 */
import { Layer } from "effect"
import * as Database from "./db/Database.ts"
import * as Main from "./platform/Main.ts"
import * as Logging from "./telemetry/Logging.ts"
import * as Tracing from "./telemetry/Tracing.ts"
import * as WorkerProgram from "./worker/program.ts"

const WorkerLive = WorkerProgram.layerFromEnv.pipe(
  Layer.provide(Database.layerFromEnv("jobq-worker")),
  Layer.provide(Tracing.layerFromEnv("jobq-worker")),
  Layer.provide(Logging.layerFromEnv)
)

Main.runMain(Layer.launch(WorkerLive))
