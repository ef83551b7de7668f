/**
 * The worker program's layers, configured from the environment: the pool, its maintenance fibers, the
 * queue depth sampler and the /metrics + /health listener. Needs the database and telemetry layers.
 */
import { Layer } from "effect"
import { RetryConfig, WorkerConfig } from "../Config.ts"
import * as KindsFromEnv from "../domain/kindsFromEnv.ts"
import { JobRepo } from "../queue/JobRepo.ts"
import { QueueRepo } from "../queue/QueueRepo.ts"
import { WorkerRepo } from "../queue/WorkerRepo.ts"
import { Prometheus } from "../telemetry/Prometheus.ts"
import * as QueueDepth from "../telemetry/QueueDepth.ts"
import * as Heartbeat from "./Heartbeat.ts"
import * as Maintenance from "./Maintenance.ts"
import * as WorkerHttp from "./WorkerHttp.ts"
import { WorkerPool } from "./WorkerPool.ts"

export const layerFromEnv = WorkerHttp.layer.pipe(
  Layer.provideMerge(
    Layer.mergeAll(
      WorkerPool.layer.pipe(Layer.provide(Heartbeat.layer)),
      Maintenance.layer,
      QueueDepth.layerFromEnv
    )
  ),
  Layer.provide([JobRepo.layer, QueueRepo.layer, WorkerRepo.layer]),
  Layer.provide(KindsFromEnv.layer),
  Layer.provide(WorkerConfig.fromEnv),
  Layer.provide(RetryConfig.fromEnv),
  Layer.provide(Prometheus.layer("jobq-worker"))
)
