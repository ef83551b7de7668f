/**
 * The worker as a library: run the pool with your own job kinds inside your own process.
 *
 *   const WorkerLive = Worker.layer({ kinds: [sendEmail], settings: { concurrency: 20 } })
 *   Layer.launch(WorkerLive.pipe(Layer.provide(Database.layerUrl(url))))
 */
import { Layer } from "effect"
import { RetryConfig, WorkerConfig, type WorkerSettingsInput } from "../Config.ts"
import { type JobKind, JobKinds } from "../domain/JobKind.ts"
import { CodeSchedules, type ScheduleDefinition } from "../domain/Schedule.ts"
import { EventsFollowed } from "../queue/eventBatch.ts"
import { FlowRepo } from "../queue/FlowRepo.ts"
import { JobRepo } from "../queue/JobRepo.ts"
import { QueueRepo } from "../queue/QueueRepo.ts"
import { RetentionRepo } from "../queue/RetentionRepo.ts"
import type { JitterBounds } from "../queue/Retry.ts"
import { WorkerRepo } from "../queue/WorkerRepo.ts"
import * as Heartbeat from "./Heartbeat.ts"
import * as Maintenance from "./Maintenance.ts"
import { WorkerPool } from "./WorkerPool.ts"

export { AttemptFailed } from "./Executor.ts"
export * as Heartbeat from "./Heartbeat.ts"
export * as Maintenance from "./Maintenance.ts"
export * as WorkerHttp from "./WorkerHttp.ts"
export { WorkerPool } from "./WorkerPool.ts"

export interface WorkerOptions {
  readonly kinds: ReadonlyArray<JobKind>
  /** Cron schedules (`defineSchedule`), upserted when the worker starts; an invalid one fails the start. */
  readonly schedules?: ReadonlyArray<ScheduleDefinition>
  readonly settings?: WorkerSettingsInput
  readonly retry?: JitterBounds
}

/** The pool and its maintenance fibers, given a database layer (`Database.layerUrl`, `Database.layerFromEnv`). */
export const layer = (options: WorkerOptions) =>
  Layer.merge(WorkerPool.layer.pipe(Layer.provide(Heartbeat.layer)), Maintenance.layer).pipe(
    Layer.provideMerge(JobRepo.layer),
    Layer.provideMerge(FlowRepo.layer),
    Layer.provideMerge(RetentionRepo.layer),
    Layer.provideMerge(QueueRepo.layer),
    Layer.provideMerge(WorkerRepo.layer),
    // one cell for the pool that keeps it current and the repositories that read it
    Layer.provideMerge(EventsFollowed.layer),
    Layer.provide(JobKinds.layer(options.kinds)),
    Layer.provide(CodeSchedules.layer(options.schedules ?? [])),
    Layer.provideMerge(WorkerConfig.layer(options.settings)),
    Layer.provide(RetryConfig.layer(options.retry ?? RetryConfig.defaults))
  )
