/** Prometheus text parsed by a real parser (`parse-prometheus-text-format`), for the /metrics tests. */
// @ts-expect-error the package ships no types
import parsePrometheusTextFormat from "parse-prometheus-text-format"

export interface Family {
  readonly name: string
  readonly type: string
  readonly metrics: ReadonlyArray<{
    readonly labels?: Record<string, string>
    readonly value?: string
    readonly buckets?: Record<string, string>
    readonly count?: string
  }>
}

export const parseFamilies = (text: string) => parsePrometheusTextFormat(text) as ReadonlyArray<Family>

const describeSeries = (name: string, labels: Record<string, string>) =>
  `${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(",")}}`

/**
 * One scrape, read strictly: `value` and `histogramCount` throw when the series is not exported at all, so
 * a check can never pass by reading a missing series as 0. `has` says whether it is.
 */
export const readExposition = (text: string) => {
  const families = parseFamilies(text)
  const sample = (name: string, labels: Record<string, string>) =>
    families
      .find((f) => f.name === name)
      ?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
  const has = (name: string, labels: Record<string, string> = {}) => sample(name, labels) !== undefined
  const value = (name: string, labels: Record<string, string> = {}) => {
    const found = sample(name, labels)
    if (found === undefined) throw new Error(`${describeSeries(name, labels)} is not exported`)
    return Number(found.value ?? found.count)
  }
  // the parser drops a labelled histogram's count: read `<name>_count{...}` from the text
  const histogramCount = (name: string, labels: Record<string, string> = {}) => {
    const line = text
      .split("\n")
      .find(
        (l) =>
          (l.startsWith(`${name}_count{`) || l.startsWith(`${name}_count `)) &&
          Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`))
      )
    if (line === undefined) throw new Error(`${describeSeries(`${name}_count`, labels)} is not exported`)
    return Number(line.split(" ").at(-1))
  }
  return { text, families, has, value, histogramCount }
}

export type Exposition = ReturnType<typeof readExposition>
