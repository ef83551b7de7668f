/**
 * Gauges of how queues are steered, sampled with the queue depth (QueueDepth): whether each is paused and
 * its limits. Only queues that are paused or limited have series (and those that were, reading 0 once
 * released), so the label values stay as few as the queues an operator steers.
 */
import { Effect, Metric } from "effect"
import { QueueRepo } from "../queue/QueueRepo.ts"

export const paused = Metric.gauge("jobq_queue_paused", {
  description: "1 while the queue is paused (POST /queues/{name}/pause), else 0; only steered queues"
})
export const concurrencyLimit = Metric.gauge("jobq_queue_concurrency_limit", {
  description: "The queue's concurrency limit over every worker; 0: none"
})
export const rateLimitMax = Metric.gauge("jobq_queue_rate_limit_max", {
  description: "Most jobs of the queue that may start in one rate window; 0: no rate limit"
})
export const rateLimitWindow = Metric.gauge("jobq_queue_rate_limit_window_seconds", {
  description: "The queue's rate window; 0: no rate limit"
})

/** An effect that samples the gauges once; the queues it ever saw steered keep a series. */
export const sample = Effect.gen(function* () {
  const repo = yield* QueueRepo
  const seen = new Set<string>()
  return Effect.gen(function* () {
    const rows = yield* repo.steeredSettings
    const byName = new Map(rows.map((row) => [row.name, row]))
    for (const row of rows) seen.add(row.name)
    for (const queue of seen) {
      const row = byName.get(queue)
      const attributes = { queue }
      yield* Metric.update(Metric.withAttributes(paused, attributes), row?.paused ? 1 : 0)
      yield* Metric.update(Metric.withAttributes(concurrencyLimit, attributes), row?.concurrencyLimit ?? 0)
      yield* Metric.update(Metric.withAttributes(rateLimitMax, attributes), row?.rateMax ?? 0)
      yield* Metric.update(Metric.withAttributes(rateLimitWindow, attributes), (row?.ratePerMs ?? 0) / 1000)
    }
  })
})
