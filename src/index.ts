/**
 * The library's core: define job kinds, migrate, enqueue and inspect jobs. The worker pool is in
 * `effect-pg-queue/worker`, the HTTP API in `effect-pg-queue/api`; each imports on its own.
 */
export { DatabaseConfig, PayloadConfig, RetryConfig, WorkerConfig } from "./Config.ts"
export * as Database from "./db/Database.ts"
export * as Migrator from "./db/Migrator.ts"
export * from "./domain/errors.ts"
export * from "./domain/Job.ts"
export {
  defineKind,
  EmptyPayload,
  type JobContext,
  type JobKind,
  JobKinds,
  JobSnoozed,
  loadKinds,
  maxSnoozes,
  PermanentError,
  snooze
} from "./domain/JobKind.ts"
export * from "./domain/Queues.ts"
export {
  CatchUp,
  CodeSchedules,
  defineSchedule,
  InvalidSchedule,
  Overlap,
  ScheduleChange,
  ScheduleDefinition,
  ScheduleInfo,
  ScheduleNotFound
} from "./domain/Schedule.ts"
export * from "./domain/Unique.ts"
export * as DemoKinds from "./kinds/DemoKinds.ts"
export { JobRepo } from "./queue/JobRepo.ts"
export * as QueueLayer from "./queue/layer.ts"
export { Queue } from "./queue/Queue.ts"
export { QueueControl } from "./queue/QueueControl.ts"
export { QueueRepo } from "./queue/QueueRepo.ts"
export * as Retry from "./queue/Retry.ts"
export { ScheduleControl } from "./queue/ScheduleControl.ts"
export { Scheduler } from "./queue/Scheduler.ts"
export { WorkerRepo } from "./queue/WorkerRepo.ts"
