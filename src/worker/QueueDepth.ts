/**
 * Samples the queue's depth from the database into gauges, from one fiber per worker process (and in
 * `npm start`), every `QUEUE_METRICS_INTERVAL` (default 15 seconds, the first time at a random moment of the
 * first interval; 0 turns it off): unfinished jobs by queue and status, and the age of each queue's oldest
 * ready job. These are the two figures to alert on (docs/observability.md).
 *
 * Every queue label the process knows (`QueueLabels`: its WORKER_QUEUES, `default`, and the queues it met)
 * reads at every sample, 0 when the queue has nothing unfinished, so a queue's series exist before its first
 * backlog and drop to 0 rather than freezing at their last value. Queues past the label budget are summed
 * into `queue="other"` (the oldest age: the largest of theirs). The same sample sets the steered queues'
 * pause and limit gauges (QueueSettings).
 */
import { Cause, Duration, Effect, Layer, Metric, Schedule } from "effect"
import { MetricsConfig } from "../Config.ts"
import { JobRepo } from "../queue/JobRepo.ts"
import { QueueLabels } from "./QueueLabels.ts"
import * as QueueSettings from "./QueueSettings.ts"

export const jobs = Metric.gauge("jobq_queue_jobs", {
  description: "Unfinished jobs by queue and status (queued, retrying, running), sampled from the database"
})
export const oldestReadyAge = Metric.gauge("jobq_queue_oldest_ready_age_seconds", {
  description: "Age of the oldest job that is ready to run but not claimed, by queue (0 when none waits)"
})

const statuses = ["queued", "retrying", "running"] as const

export const sample = Effect.gen(function* () {
  const repo = yield* JobRepo
  const labels = yield* QueueLabels
  const settings = yield* QueueSettings.sample
  return Effect.gen(function* () {
    yield* settings
    const rows = yield* repo.depth
    const counts = new Map<string, number>()
    const ages = new Map<string, number>()
    for (const row of rows) {
      const queue = labels.label(row.queue)
      const key = `${queue}\u0000${row.status}`
      counts.set(key, (counts.get(key) ?? 0) + row.count)
      if (row.oldestReadySeconds !== null)
        ages.set(queue, Math.max(ages.get(queue) ?? 0, row.oldestReadySeconds))
    }
    for (const queue of labels.known()) {
      for (const status of statuses) {
        const count = counts.get(`${queue}\u0000${status}`) ?? 0
        yield* Metric.update(Metric.withAttributes(jobs, { queue, status }), count)
      }
      yield* Metric.update(Metric.withAttributes(oldestReadyAge, { queue }), ages.get(queue) ?? 0)
    }
  })
})

export const layer = Layer.effectDiscard(
  Effect.gen(function* () {
    const { queueDepthInterval: interval } = yield* MetricsConfig
    if (interval === undefined) return
    const once = yield* sample
    // the first sample at a random moment of the first interval: processes started together (a deploy)
    // then do not all count at once, which on a backlog of millions is a burst of work for the database
    const sampling = once.pipe(
      Effect.catchCause((cause) => Effect.logWarning("sampling queue depth failed", Cause.pretty(cause))),
      Effect.repeat(Schedule.spaced(interval))
    )
    yield* Effect.sleep(Duration.millis(Math.random() * Duration.toMillis(interval))).pipe(
      Effect.andThen(sampling),
      Effect.annotateLogs({ module: "QueueDepth" }),
      Effect.forkScoped
    )
  })
)
