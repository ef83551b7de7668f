/**
 * The worker's metrics. Labels stay bounded: kind (declared in code) and queue (bounded by `QueueLabels`),
 * never a job id.
 */
import { type Context, Metric } from "effect"
import * as Series from "../telemetry/Series.ts"
import { other, type QueueLabels } from "./QueueLabels.ts"

/** A claim's round trip: 0.5 ms to 32.8 s, doubling (17 boundaries, then +Inf). */
const seconds = Metric.exponentialBoundaries({ start: 0.0005, factor: 2, count: 18 })

/**
 * How long a job ran or waited: from 0.5 ms (no-op jobs) to 4 hours (a backlog, a long export), in 1-2.5-5
 * steps up to 10 s and wider ones after (20 boundaries, then +Inf). Doubling from 0.5 ms, as before, ended at
 * 32.8 s: every longer job fell in +Inf.
 */
export const jobSecondsBoundaries: ReadonlyArray<number> = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
  14400
]

const counter = (name: string, description: string) =>
  Metric.counter(name, { description, incremental: true })

export const claimed = counter("jobq_jobs_claimed_total", "Jobs claimed by this worker")
export const succeeded = counter("jobq_jobs_succeeded_total", "Jobs that succeeded")
export const retried = counter("jobq_jobs_retried_total", "Failed attempts scheduled for a retry")
export const failed = counter("jobq_jobs_failed_total", "Jobs that failed permanently")
export const cancelled = counter("jobq_jobs_cancelled_total", "Running jobs cancelled on request")
export const released = counter(
  "jobq_jobs_released_total",
  "Running jobs given back to the queue at shutdown"
)
export const snoozed = counter("jobq_jobs_snoozed_total", "Attempts ended by a snooze, the attempt not spent")
export const rescued = counter("jobq_jobs_rescued_total", "Jobs whose lease expired, rescued by this worker")
export const leaseLost = counter("jobq_jobs_lease_lost_total", "Running jobs this worker lost the lease of")

export const executionSeconds = Metric.histogram("jobq_job_execution_seconds", {
  description: "Handler run time of one attempt",
  boundaries: jobSecondsBoundaries
})
export const queueWaitSeconds = Metric.histogram("jobq_job_queue_wait_seconds", {
  description: "Time from a job becoming ready (run_at) to its claim",
  boundaries: jobSecondsBoundaries
})
export const claimSeconds = Metric.histogram("jobq_claim_duration_seconds", {
  description:
    "One claim statement, from sent to landed (a pipelined claim's time includes the claim before it)",
  boundaries: seconds
})
export const running = Metric.gauge("jobq_jobs_running", { description: "Jobs this worker is running now" })
export const claimsHeldBack = counter(
  "jobq_claims_held_back_total",
  "Claims of a limited queue that its limit cut short, by queue and limit (concurrency or rate)"
)
export const maintainer = Metric.gauge("jobq_worker_maintainer", {
  description: "1 while this worker is the elected maintainer (lease rescue, pruning, counting), else 0"
})
export const heartbeats = Metric.counter("jobq_worker_heartbeats_total", {
  description:
    "Heartbeats this worker wrote to the workers table (GET /workers); failed ones are not counted",
  incremental: true
})

/** Every per-job series of one (kind, queue), found once per claimed job. */
export interface JobMetrics {
  readonly claimed: Series.CounterSeries
  readonly succeeded: Series.CounterSeries
  readonly retried: Series.CounterSeries
  readonly failed: Series.CounterSeries
  readonly cancelled: Series.CounterSeries
  readonly released: Series.CounterSeries
  readonly leaseLost: Series.CounterSeries
  readonly snoozed: Series.CounterSeries
  readonly executionSeconds: Series.HistogramSeries
  readonly queueWaitSeconds: Series.HistogramSeries
}

/** The names of the per-job counters (the rest are histograms). */
export type JobCounter = {
  [K in keyof JobMetrics]: JobMetrics[K] extends Series.CounterSeries ? K : never
}[keyof JobMetrics]

/**
 * The per-job series for a job's kind and queue, registered the first time that pair of labels is seen. The
 * labels are bounded: a kind not in `kinds` is `other`, and so is a queue past the `queues` budget.
 */
export const jobMetrics = (
  context: Context.Context<never>,
  kinds: ReadonlyArray<string>,
  queues: QueueLabels
) => {
  const declared = new Set(kinds)
  const byKind = new Map<string, Map<string, JobMetrics>>()
  const lookUp = (job: { readonly kind: string; readonly queue: string }): JobMetrics => {
    const kind = declared.has(job.kind) ? job.kind : other
    const queue = queues.label(job.queue)
    let byQueue = byKind.get(kind)
    if (byQueue === undefined) {
      byQueue = new Map()
      byKind.set(kind, byQueue)
    }
    let found = byQueue.get(queue)
    if (found === undefined) {
      const attributes = { kind, queue }
      const count = (metric: Metric.Metric<number, Metric.CounterState<number>>) =>
        Series.counter(context, metric, attributes)
      found = {
        claimed: count(claimed),
        succeeded: count(succeeded),
        retried: count(retried),
        failed: count(failed),
        cancelled: count(cancelled),
        released: count(released),
        leaseLost: count(leaseLost),
        snoozed: count(snoozed),
        executionSeconds: Series.histogram(context, executionSeconds, jobSecondsBoundaries, attributes),
        queueWaitSeconds: Series.histogram(context, queueWaitSeconds, jobSecondsBoundaries, attributes)
      }
      byQueue.set(queue, found)
    }
    return found
  }
  // the last pair asked for: a claim's jobs mostly share one kind and queue, and each is asked for 3 times (claimed,
  // started, settled); comparing two short strings is cheaper than four hash look-ups of freshly decoded ones
  let lastKind: string | undefined
  let lastQueue: string | undefined
  let last: JobMetrics | undefined
  return (job: { readonly kind: string; readonly queue: string }): JobMetrics => {
    if (job.kind === lastKind && job.queue === lastQueue) return last!
    const found = lookUp(job)
    lastKind = job.kind
    lastQueue = job.queue
    last = found
    return found
  }
}

/** Cron: jobs enqueued for a slot. No schedule label: names are client-chosen; logs name them. */
export const scheduleFires = counter("jobq_schedule_fires_total", "Cron slots that enqueued a job")
/** Cron: slots skipped, by `reason`: `overlap` (the previous run still going) or `catch_up` (missed). */
export const scheduleSkipped = counter(
  "jobq_schedule_skipped_slots_total",
  "Cron slots skipped, by reason: overlap (previous run still queued or running) or catch_up (missed while no worker ticked, per the catch-up policy)"
)
