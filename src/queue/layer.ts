/**
 * The queue's services over an existing SQL client: `JobRepo`, `QueueRepo`, `QueueControl`, `Waiters`,
 * `Queue` and `JobAdmin`, for the given job kinds.
 */
import { Layer } from "effect"
import { type JobKind, JobKinds } from "../domain/JobKind.ts"
import { JobAdmin } from "./JobAdmin.ts"
import { JobRepo } from "./JobRepo.ts"
import { Queue } from "./Queue.ts"
import { QueueControl } from "./QueueControl.ts"
import { Waiters } from "./Waiters.ts"

export const layer = (kinds: ReadonlyArray<JobKind>) =>
  JobAdmin.layer.pipe(
    Layer.provideMerge(Queue.layer),
    Layer.provideMerge(QueueControl.layer),
    Layer.provideMerge(Waiters.layer),
    Layer.provideMerge(JobRepo.layer),
    Layer.provideMerge(JobKinds.layer(kinds))
  )
