/**
 * Metric series that move for every job or request, kept as plain numbers and read only when metrics are
 * exported (`Metric.registerUnsafe`). An Effect `Metric.update` looks up the context, the attributes and the
 * registry on every call: the worker moves three or four series per job, and at tens of thousands of jobs a
 * second that lookup was a tenth of its CPU; in the API, the request counter and histogram and the enqueued
 * counter were about 5% of a `POST /jobs`. What the exporter sees is the same as with updates: a cumulative
 * counter, or a histogram in Effect's own `HistogramState` shape.
 */
import { Context, Metric } from "effect"

export class CounterSeries {
  private count = 0
  add(n: number) {
    this.count += n
  }
  /** @internal */
  state(): Metric.CounterState<number> {
    return { count: this.count, incremental: true }
  }
}

export class HistogramSeries {
  private readonly counts: Uint32Array
  private count = 0
  private sum = 0
  private min = Number.MAX_VALUE
  private max = -Number.MAX_VALUE
  private readonly boundaries: ReadonlyArray<number>
  constructor(boundaries: ReadonlyArray<number>) {
    this.boundaries = boundaries
    this.counts = new Uint32Array(boundaries.length + 1)
  }
  observe(value: number) {
    const bounds = this.boundaries
    let bucket = 0
    while (bucket < bounds.length && value > (bounds[bucket] as number)) bucket++
    this.counts[bucket] = (this.counts[bucket] as number) + 1
    this.count++
    this.sum += value
    if (value < this.min) this.min = value
    if (value > this.max) this.max = value
  }
  /** @internal */
  state(): Metric.HistogramState {
    let cumulative = 0
    const buckets = this.boundaries.map((boundary, i): [number, number] => {
      cumulative += this.counts[i] as number
      return [boundary, cumulative]
    })
    const empty = this.count === 0
    return { buckets, count: this.count, min: empty ? 0 : this.min, max: empty ? 0 : this.max, sum: this.sum }
  }
}

type Series = CounterSeries | HistogramSeries

// One series per (registry, metric, attributes), shared by every pool or router in the process, so a second
// one in the same process continues the counts instead of replacing them.
const registries = new WeakMap<object, Map<Metric.Metric<any, any>, Map<string, Series>>>()

const register = <S extends Series>(
  context: Context.Context<never>,
  metric: Metric.Metric<any, any>,
  attributes: Readonly<Record<string, string>>,
  make: () => S
): S => {
  const registry = Context.get(context, Metric.MetricRegistry)
  let byMetric = registries.get(registry)
  if (byMetric === undefined) {
    byMetric = new Map()
    registries.set(registry, byMetric)
  }
  let byAttributes = byMetric.get(metric)
  if (byAttributes === undefined) {
    byAttributes = new Map()
    byMetric.set(metric, byAttributes)
  }
  const key = JSON.stringify(attributes)
  const found = byAttributes.get(key)
  if (found !== undefined) return found as S
  const series = make()
  Metric.registerUnsafe(Metric.withAttributes(metric, attributes), context, {
    get: () => series.state(),
    update: () => {},
    modify: () => {}
  })
  byAttributes.set(key, series)
  return series
}

export const counter = (
  context: Context.Context<never>,
  metric: Metric.Metric<number, Metric.CounterState<number>>,
  attributes: Readonly<Record<string, string>>
) => register(context, metric, attributes, () => new CounterSeries())

export const histogram = (
  context: Context.Context<never>,
  metric: Metric.Metric<number, Metric.HistogramState>,
  boundaries: ReadonlyArray<number>,
  attributes: Readonly<Record<string, string>>
) => register(context, metric, attributes, () => new HistogramSeries(boundaries))
