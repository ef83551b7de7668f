/**
 * The `queue` label of the worker's metrics, bounded. Queue names are chosen by clients (any string up to
 * 128 characters), and every name a worker meets adds about 50 series to its `/metrics` for the rest of its
 * life: 2,000 queue names made 106,000 series and a 13.7 MB scrape. The queues this worker is configured to
 * serve (WORKER_QUEUES) and `default` always keep their name; of the others, the first `METRICS_MAX_QUEUES`
 * (50) the process meets keep theirs, and the rest are counted together as `queue="other"`. Kinds need no
 * such bound: they are declared in code, and a job of a kind this worker does not declare is counted as
 * `kind="other"`.
 */
import { Context, Effect, Layer } from "effect"
import { MetricsConfig, WorkerConfig } from "../Config.ts"

export const other = "other"

export interface QueueLabels {
  /** The label value for a queue name: the name itself, or `other` once the budget is spent. */
  readonly label: (queue: string) => string
  /** Every label value handed out so far (the gauges of each read 0 when its queue is empty). */
  readonly known: () => ReadonlySet<string>
}

export const make = (maxQueues: number, pinned: ReadonlyArray<string> = []): QueueLabels => {
  const fixed = new Set<string>(["default", ...pinned])
  const labels = new Set<string>(fixed)
  let chosen = 0
  return {
    label: (queue) => {
      if (labels.has(queue)) return queue
      if (chosen < maxQueues) {
        chosen++
        labels.add(queue)
        return queue
      }
      labels.add(other)
      return other
    },
    known: () => labels
  }
}

/** The process's queue labels; without the layer below, the default budget shared by the whole process. */
export const QueueLabels = Context.Reference<QueueLabels>("jobq/telemetry/QueueLabels", {
  defaultValue: () => make(MetricsConfig.defaults.maxQueues)
})

/** Queue labels from METRICS_MAX_QUEUES, with this worker's WORKER_QUEUES always labelled. */
export const layer = Layer.effect(
  QueueLabels,
  Effect.gen(function* () {
    const { maxQueues } = yield* MetricsConfig
    const { queues } = yield* WorkerConfig
    return make(maxQueues, queues ?? [])
  })
)
