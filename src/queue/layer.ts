/**
 * The queue's services over an existing SQL client: `JobRepo`, `FlowRepo`, `QueueRepo`, `QueueControl`, `Waiters`,
 * `Queue`, `JobAdmin` and `ScheduleControl`, for the given job kinds.
 */
import { Layer } from "effect"
import { type JobKind, JobKinds } from "../domain/JobKind.ts"
import { FlowRepo } from "./FlowRepo.ts"
import { JobAdmin } from "./JobAdmin.ts"
import { JobRepo } from "./JobRepo.ts"
import { Queue } from "./Queue.ts"
import { QueueControl } from "./QueueControl.ts"
import { ScheduleControl } from "./ScheduleControl.ts"
import { Waiters } from "./Waiters.ts"

export const layer = (kinds: ReadonlyArray<JobKind>) =>
  Layer.merge(JobAdmin.layer, ScheduleControl.layer).pipe(
    Layer.provideMerge(Queue.layer),
    Layer.provideMerge(QueueControl.layer),
    Layer.provideMerge(Waiters.layer),
    Layer.provideMerge(FlowRepo.layer),
    Layer.provideMerge(JobRepo.layer),
    Layer.provideMerge(JobKinds.layer(kinds))
  )
