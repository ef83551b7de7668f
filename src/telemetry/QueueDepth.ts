/**
 * Samples the queue's depth from the database into gauges, from one fiber per process, every
 * `QUEUE_METRICS_INTERVAL` (default 15 seconds, the first time at a random moment of the first interval;
 * 0 turns it off): unfinished jobs by queue and status, and the age of each queue's oldest ready job. These are the two figures to alert on (docs/observability.md).
 * The same sample sets the steered queues' pause and limit gauges (QueueSettings).
 */
import { Cause, Config, Duration, Effect, Layer, Metric, Schedule } from "effect"
import { JobRepo } from "../queue/JobRepo.ts"
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
  const seenQueues = new Set<string>()
  const settings = yield* QueueSettings.sample
  return Effect.gen(function* () {
    yield* settings
    const rows = yield* repo.depth
    for (const row of rows) seenQueues.add(row.queue)
    // a queue that emptied must read 0, not its last value
    for (const queue of seenQueues) {
      for (const status of statuses) {
        const count = rows.find((r) => r.queue === queue && r.status === status)?.count ?? 0
        yield* Metric.update(Metric.withAttributes(jobs, { queue, status }), count)
      }
      const ages = rows.filter((r) => r.queue === queue && r.oldestReadySeconds !== null)
      const age = ages.length === 0 ? 0 : Math.max(...ages.map((r) => r.oldestReadySeconds!))
      yield* Metric.update(Metric.withAttributes(oldestReadyAge, { queue }), age)
    }
  })
})

export const layerFromEnv = Layer.effectDiscard(
  Effect.gen(function* () {
    // "0" (no unit) turns sampling off, as well as any zero duration
    const setting = yield* Config.String("QUEUE_METRICS_INTERVAL").pipe(Config.withDefault("15 seconds"))
    if (setting.trim() === "0") return
    const interval = yield* Config.Duration("QUEUE_METRICS_INTERVAL").pipe(
      Config.withDefault(Duration.seconds(15))
    )
    if (Duration.toMillis(interval) <= 0) return
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
