import { describe, expect, it } from "bun:test"
// @ts-expect-error the package ships no types
import parsePrometheusTextFormat from "parse-prometheus-text-format"
import { setupApiTests } from "../support/api.ts"

interface Family {
  readonly name: string
  readonly type: string
  readonly metrics: ReadonlyArray<{
    readonly labels?: Record<string, string>
    readonly value?: string
    readonly buckets?: Record<string, string>
    readonly count?: string
  }>
}

const { request, postJson } = await setupApiTests(import.meta.file)

const scrape = async () => {
  const response = await request("/metrics")
  expect(response.status).toBe(200)
  expect(response.headers.get("content-type")).toStartWith("text/plain; version=0.0.4")
  const text = await response.text()
  const families = parsePrometheusTextFormat(text) as ReadonlyArray<Family>
  return { text, family: (name: string) => families.find((f) => f.name === name) }
}

describe("/metrics", () => {
  it("parses as Prometheus text and counts requests by route template, method and status", async () => {
    const id = crypto.randomUUID()
    await request(`/jobs/${id}`)
    await request(`/jobs/${crypto.randomUUID()}`)
    await postJson("/jobs", { kind: "sleep", payload: { ms: 1 } })
    await postJson("/jobs", { kind: "sleep", payload: { ms: 1 } })
    await postJson("/jobs", { kind: "noop", payload: {} })
    await request("/nowhere/at/all")
    const { text, family } = await scrape()

    const requests = family("jobq_http_requests_total")!
    expect(requests.type).toBe("COUNTER")
    const count = (labels: Record<string, string>) =>
      Number(
        requests.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value ??
          0
      )
    expect(count({ route: "/jobs/:id", method: "GET", status: "404" })).toBe(2)
    expect(count({ route: "/jobs", method: "POST", status: "201" })).toBe(3)
    expect(count({ route: "unmatched", method: "GET", status: "404" })).toBe(1)
    // route templates only: no raw id or unknown path becomes a label value
    expect(text).not.toContain(id)
    expect(text).not.toContain("/nowhere")

    // the parser keeps one series per histogram family, so the series are read from the text (checked strictly below)
    expect(family("jobq_http_request_duration_seconds")!.type).toBe("HISTOGRAM")
    const series = (suffix: string, le = "") =>
      text
        .split("\n")
        .find(
          (line) =>
            line.startsWith(
              `jobq_http_request_duration_seconds_${suffix}{route="/jobs",method="POST",status="201",`
            ) && line.includes(le)
        )
    expect(Number(series("count")!.split(" ").at(-1))).toBe(3)
    expect(Number(series("bucket", 'le="+Inf"')!.split(" ").at(-1))).toBe(3)

    const enqueued = family("jobq_jobs_enqueued_total")!
    expect(Number(enqueued.metrics.find((m) => m.labels?.kind === "sleep")?.value)).toBe(2)
    expect(Number(enqueued.metrics.find((m) => m.labels?.kind === "noop")?.value)).toBe(1)

    const pool = family("jobq_db_connections")!
    expect(pool.type).toBe("GAUGE")
    expect(Number(pool.metrics.find((m) => m.labels?.state === "active")?.value)).toBeGreaterThanOrEqual(1)
    expect(Number(family("jobq_db_pool_max_connections")!.metrics[0]!.value)).toBe(20)
  })

  it("is a strictly well-formed exposition: typed families, name{labels} value samples, cumulative buckets", async () => {
    const { text } = await scrape()
    const sample =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:\\.|[^"\\])*",?)*\})? (-?[0-9.]+(?:[eE][+-]?[0-9]+)?|[+-]Inf|NaN)$/
    const types = new Map<string, string>()
    const buckets = new Map<string, Array<{ le: number; value: number }>>()
    const counts = new Map<string, number>()
    for (const line of text.split("\n")) {
      if (line === "") continue
      const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line)
      if (type !== null) {
        expect(types.has(type[1]!)).toBe(false)
        types.set(type[1]!, type[2]!)
        continue
      }
      if (line.startsWith("#")) continue
      const match = sample.exec(line)
      expect(match).not.toBeNull()
      const name = match![1]!
      const family = [...types.keys()].find(
        (f) => name === f || (/^_(bucket|sum|count|total)$/.test(name.slice(f.length)) && name.startsWith(f))
      )
      expect(family).toBeDefined()
      if (types.get(family!) !== "histogram") continue
      const labels = (match![2] ?? "").replace(/,?le="[^"]*"/, "")
      if (name.endsWith("_bucket")) {
        const le = /le="([^"]+)"/.exec(line)![1]!
        const list = buckets.get(labels) ?? []
        list.push({ le: le === "+Inf" ? Infinity : Number(le), value: Number(match![3]) })
        buckets.set(labels, list)
      } else if (name.endsWith("_count")) counts.set(labels, Number(match![3]))
    }
    expect(types.get("jobq_http_requests_total")).toBe("counter")
    expect(buckets.size).toBeGreaterThan(0)
    for (const [labels, list] of buckets) {
      const sorted = [...list].sort((a, b) => a.le - b.le)
      for (let i = 1; i < sorted.length; i++)
        expect(sorted[i]!.value).toBeGreaterThanOrEqual(sorted[i - 1]!.value)
      expect(sorted.at(-1)!.le).toBe(Infinity)
      expect(sorted.at(-1)!.value).toBe(counts.get(labels)!)
    }
  })
})
