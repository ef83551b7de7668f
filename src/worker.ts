/** `bun run worker`: the worker pool, its maintenance fibers and its /metrics + /health listener. */
import { NodeRuntime } from "@effect/platform-node"
import { Layer } from "effect"
import { RetryConfig, WorkerConfig } from "./Config.ts"
import * as Database from "./db/Database.ts"
import * as KindsFromEnv from "./domain/kindsFromEnv.ts"
import { JobRepo } from "./queue/JobRepo.ts"
import * as Logging from "./telemetry/Logging.ts"
import { Prometheus } from "./telemetry/Prometheus.ts"
import * as QueueDepth from "./telemetry/QueueDepth.ts"
import * as Tracing from "./telemetry/Tracing.ts"
import * as Maintenance from "./worker/Maintenance.ts"
import * as WorkerHttp from "./worker/WorkerHttp.ts"
import { WorkerPool } from "./worker/WorkerPool.ts"

const WorkerLive = WorkerHttp.layer.pipe(
  Layer.provideMerge(Layer.mergeAll(WorkerPool.layer, Maintenance.layer, QueueDepth.layerFromEnv)),
  Layer.provide(JobRepo.layer),
  Layer.provide(KindsFromEnv.layer),
  Layer.provide(WorkerConfig.fromEnv),
  Layer.provide(RetryConfig.fromEnv),
  Layer.provideMerge(Database.layerFromEnv("jobq-worker")),
  Layer.provide(Prometheus.layer("jobq-worker")),
  Layer.provide(Tracing.layerFromEnv("jobq-worker")),
  Layer.provide(Logging.layerFromEnv)
)

NodeRuntime.runMain(Layer.launch(WorkerLive))
