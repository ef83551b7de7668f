/**
 * The worker program's layers, configured from the environment: the pool, its maintenance fibers and the
 * queue depth sampler, and the /metrics + /health listener. Needs the database and telemetry layers.
 */
import { Layer } from "effect"
import { MetricsConfig, RetryConfig, WorkerConfig } from "../Config.ts"
import * as KindsFromEnv from "../kinds/fromEnv.ts"
import { EventsFollowed } from "../queue/eventBatch.ts"
import { FlowRepo } from "../queue/FlowRepo.ts"
import { JobRepo } from "../queue/JobRepo.ts"
import { QueueRepo } from "../queue/QueueRepo.ts"
import { RetentionRepo } from "../queue/RetentionRepo.ts"
import { WorkerRepo } from "../queue/WorkerRepo.ts"
import { Prometheus } from "../telemetry/Prometheus.ts"
import * as Heartbeat from "./Heartbeat.ts"
import * as Maintenance from "./Maintenance.ts"
import * as QueueDepth from "./QueueDepth.ts"
import * as QueueLabels from "./QueueLabels.ts"
import * as WorkerHttp from "./WorkerHttp.ts"
import { WorkerPool } from "./WorkerPool.ts"

/**
 * The pool, maintenance and the queue depth sampler, without a listener of their own: `npm start` runs
 * them beside the API, whose `/metrics` and `/health` on PORT cover the whole process.
 */
export const poolFromEnv = Layer.mergeAll(
  WorkerPool.layer.pipe(Layer.provide(Heartbeat.layer)),
  Maintenance.layer,
  QueueDepth.layer
).pipe(
  Layer.provide(QueueLabels.layer),
  Layer.provide([JobRepo.layer, FlowRepo.layer, RetentionRepo.layer, QueueRepo.layer, WorkerRepo.layer]),
  // one cell for the pool that keeps it current and the repositories that read it
  Layer.provideMerge(EventsFollowed.layer),
  Layer.provide(KindsFromEnv.layer),
  Layer.provide(KindsFromEnv.schedulesLayer),
  Layer.provideMerge(WorkerConfig.fromEnv),
  Layer.provideMerge(MetricsConfig.fromEnv),
  Layer.provide(RetryConfig.fromEnv)
)

/**
 * `bun run worker`: the pool with its `/metrics` and `/health` on WORKER_METRICS_PORT, which binds before
 * the pool claims anything (WorkerHttp.layer).
 */
export const layerFromEnv = WorkerHttp.layer(poolFromEnv).pipe(
  Layer.provideMerge(WorkerConfig.fromEnv),
  Layer.provideMerge(MetricsConfig.fromEnv),
  Layer.provide(Prometheus.layer("jobq-worker"))
)
