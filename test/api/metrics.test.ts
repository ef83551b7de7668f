import { describe, expect, it } from "bun:test"
import { requestSecondsBoundaries } from "../../src/telemetry/ApiMetrics.ts"
import { setupApiTests } from "../support/api.ts"
import { parseFamilies } from "../support/prometheus.ts"

const { request, postJson } = await setupApiTests(import.meta.file)

const scrape = async () => {
  const response = await request("/metrics")
  expect(response.status).toBe(200)
  expect(response.headers.get("content-type")).toStartWith("text/plain; version=0.0.4")
  const text = await response.text()
  const families = parseFamilies(text)
  return { text, family: (name: string) => families.find((f) => f.name === name) }
}

describe("/metrics", () => {
  it("parses as Prometheus text and counts requests by route template, method and status", async () => {
    // metrics are process-wide and other test files may share the process: compare before and after
    const sampleOf = (scraped: Awaited<ReturnType<typeof scrape>>) => {
      const value = (name: string, labels: Record<string, string>) =>
        Number(
          scraped
            .family(name)
            ?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value ?? 0
        )
      const series = (suffix: string, le = "") =>
        Number(
          scraped.text
            .split("\n")
            .find(
              (line) =>
                line.startsWith(
                  `jobq_http_request_duration_seconds_${suffix}{route="/jobs",method="POST",status="201",`
                ) && line.includes(le)
            )
            ?.split(" ")
            .at(-1) ?? 0
        )
      return {
        getMissing: value("jobq_http_requests_total", { route: "/jobs/:id", method: "GET", status: "404" }),
        created: value("jobq_http_requests_total", { route: "/jobs", method: "POST", status: "201" }),
        unmatched: value("jobq_http_requests_total", { route: "unmatched", method: "GET", status: "404" }),
        // the parser keeps one series per histogram family, so these are read from the text (checked below)
        latencyCount: series("count"),
        latencyInf: series("bucket", 'le="+Inf"'),
        sleeps: value("jobq_jobs_enqueued_total", { kind: "sleep" }),
        noops: value("jobq_jobs_enqueued_total", { kind: "noop" })
      }
    }
    const before = sampleOf(await scrape())
    const id = crypto.randomUUID()
    await request(`/jobs/${id}`)
    await request(`/jobs/${crypto.randomUUID()}`)
    const key = `metrics-${crypto.randomUUID()}`
    await postJson("/jobs", { kind: "sleep", payload: { ms: 1 } }, { "idempotency-key": key })
    await postJson("/jobs", { kind: "sleep", payload: { ms: 1 } }, { "idempotency-key": key }) // a replay
    await postJson("/jobs", { kind: "sleep", payload: { ms: 1 } })
    await postJson("/jobs", { kind: "noop", payload: {} })
    await request("/nowhere/at/all")
    const scraped = await scrape()
    const after = sampleOf(scraped)

    expect(scraped.family("jobq_http_requests_total")!.type).toBe("COUNTER")
    expect(scraped.family("jobq_http_request_duration_seconds")!.type).toBe("HISTOGRAM")
    expect(after.getMissing - before.getMissing).toBe(2)
    expect(after.created - before.created).toBe(3)
    expect(after.unmatched - before.unmatched).toBe(1)
    expect(after.latencyCount - before.latencyCount).toBe(3)
    expect(after.latencyInf - before.latencyInf).toBe(3)
    expect(after.sleeps - before.sleeps).toBe(2)
    expect(after.noops - before.noops).toBe(1)
    // route templates only: no raw id or unknown path becomes a label value
    expect(scraped.text).not.toContain(id)
    expect(scraped.text).not.toContain("/nowhere")

    const pool = scraped.family("jobq_db_connections")!
    expect(pool.type).toBe("GAUGE")
    expect(Number(pool.metrics.find((m) => m.labels?.state === "active")?.value)).toBeGreaterThanOrEqual(1)
    expect(Number(scraped.family("jobq_db_pool_max_connections")!.metrics[0]!.value)).toBe(20)
  })

  it("is a strictly well-formed exposition: typed families, name{labels} value samples, cumulative buckets", async () => {
    // the families checked below get samples from this test's own requests, whatever ran before it
    expect((await postJson("/jobs", { kind: "noop", payload: {} })).status).toBe(201)
    expect((await request(`/jobs/${crypto.randomUUID()}`)).status).toBe(404)
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
      const labels = `${family}${(match![2] ?? "").replace(/,?le="[^"]*"/, "")}`
      if (name.endsWith("_bucket")) {
        const le = /le="([^"]+)"/.exec(line)![1]!
        const list = buckets.get(labels) ?? []
        list.push({ le: le === "+Inf" ? Infinity : Number(le), value: Number(match![3]) })
        buckets.set(labels, list)
      } else if (name.endsWith("_count")) counts.set(labels, Number(match![3]))
    }
    expect(types.get("jobq_http_requests_total")).toBe("counter")
    expect(types.get("jobq_http_request_duration_seconds")).toBe("histogram")
    for (const series of [
      'route="/jobs",method="POST",status="201"',
      'route="/jobs/:id",method="GET",status="404"'
    ])
      expect([...buckets.keys()].some((labels) => labels.includes(series))).toBe(true)
    for (const [labels, list] of buckets) {
      const sorted = [...list].sort((a, b) => a.le - b.le)
      for (let i = 1; i < sorted.length; i++)
        expect(sorted[i]!.value).toBeGreaterThanOrEqual(sorted[i - 1]!.value)
      expect(sorted.at(-1)!.le).toBe(Infinity)
      expect(sorted.at(-1)!.value).toBe(counts.get(labels)!)
    }
  })

  it("declares seconds for the latency histogram and no unit for counts; docs/api.md states its real range", async () => {
    const { text } = await scrape()
    const units = text.split("\n").filter((l) => l.startsWith("# UNIT "))
    expect(units).toContain("# UNIT jobq_http_request_duration_seconds seconds")
    for (const line of units) expect(line).toMatch(/^# UNIT [a-z_]+_seconds seconds$/)
    const top = requestSecondsBoundaries.filter(Number.isFinite).at(-1)!
    expect(text).toContain(`le="${top}"`)
    const apiMd = await Bun.file(new URL("../../docs/api.md", import.meta.url)).text()
    expect(apiMd).toContain(`| histogram, 0.5 ms to ${top} s`)
  })
})
