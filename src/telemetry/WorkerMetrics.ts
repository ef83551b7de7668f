/** The worker's metrics. Labels stay low-cardinality: kind and queue, never a job id. */
import { type Context, Metric } from "effect"
import * as Series from "./Series.ts"

const seconds = Metric.exponentialBoundaries({ start: 0.0005, factor: 2, count: 18 })

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
export const rescued = counter("jobq_jobs_rescued_total", "Jobs whose lease expired, rescued by this worker")
export const leaseLost = counter("jobq_jobs_lease_lost_total", "Running jobs this worker lost the lease of")

export const executionSeconds = Metric.histogram("jobq_job_execution_seconds", {
  description: "Handler run time of one attempt",
  boundaries: seconds
})
export const queueWaitSeconds = Metric.histogram("jobq_job_queue_wait_seconds", {
  description: "Time from a job becoming ready (run_at) to its claim",
  boundaries: seconds
})
export const claimSeconds = Metric.histogram("jobq_claim_duration_seconds", {
  description: "Round trip of one claim statement",
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
  readonly executionSeconds: Series.HistogramSeries
  readonly queueWaitSeconds: Series.HistogramSeries
}

/** The names of the per-job counters (the rest are histograms). */
export type JobCounter = {
  [K in keyof JobMetrics]: JobMetrics[K] extends Series.CounterSeries ? K : never
}[keyof JobMetrics]

/** The per-job series for a job's kind and queue, registered the first time that pair is seen. */
export const jobMetrics = (context: Context.Context<never>) => {
  const byKind = new Map<string, Map<string, JobMetrics>>()
  return (job: { readonly kind: string; readonly queue: string }): JobMetrics => {
    let byQueue = byKind.get(job.kind)
    if (byQueue === undefined) {
      byQueue = new Map()
      byKind.set(job.kind, byQueue)
    }
    let found = byQueue.get(job.queue)
    if (found === undefined) {
      const attributes = { kind: job.kind, queue: job.queue }
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
        executionSeconds: Series.histogram(context, executionSeconds, seconds, attributes),
        queueWaitSeconds: Series.histogram(context, queueWaitSeconds, seconds, attributes)
      }
      byQueue.set(job.queue, found)
    }
    return found
  }
}
