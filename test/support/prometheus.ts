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
