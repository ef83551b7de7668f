/**
 * Load and soak: the API and a worker as real processes under a mixed load (enqueue, get, list, cancel)
 * from concurrent clients for a fixed time and a bounded number of requests. Asserts zero errors and that
 * every accepted job ends terminal; reports latency percentiles per operation and the RSS of both processes,
 * sampled through the run. Short: seconds, in `npm test`; long: minutes (profile.ts).
 *
 * Memory: eight seconds show warm-up (JIT, pools, caches), not a trend, so the short profile only reports
 * RSS. The long profile asserts it is flat. RSS saws up and down by tens of MiB with garbage collection, so
 * a straight fit through all of it wanders by +-15 MiB/min on an unchanged build; its troughs, right after
 * a collection, follow what stays live. After warm-up (`warmUpS`) the run is cut into spans of `spanS`, the
 * lowest RSS of each span taken, and the least-squares slope through those troughs must stay under
 * `maxGrowthMiBPerMinute` for each process (a leak of that rate fills 7 GiB a day). A leak of one KiB per
 * request planted in the API measured 8-17 MiB/min at 270-320 requests a second on a loaded machine; the
 * unchanged build -7 to -2 (API) and -3 to -1 (worker) (docs/reliability.md, "Load and soak").
 */
import { describe, expect, it } from "bun:test"
import { readFileSync } from "node:fs"
import { setupChaos } from "./harness.ts"
import { type Answer, call, percentile } from "./http.ts"
import { pick, profile, report } from "./profile.ts"

const chaos = await setupChaos(import.meta.file)

/** Resident memory of a process in MiB, from /proc. */
const rssMiB = (pid: number) => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  const kib = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN)
  return Math.round((kib / 1024) * 10) / 10
}

type Op = "enqueue" | "get" | "list" | "cancel"

/** The long profile's bound on the growth of the RSS troughs after warm-up (see the file comment). */
const maxGrowthMiBPerMinute = 5
const warmUpS = pick(2, 30)
const spanS = pick(2, 20)

type RssSample = { readonly atS: number; readonly api: number; readonly worker: number }

/** The lowest sample of each process in each span of `spanS` seconds from `fromS` on (the last span takes
 *  the remainder). */
const troughs = (samples: ReadonlyArray<RssSample>, fromS: number, toS: number) => {
  const spans = Math.max(1, Math.floor((toS - fromS) / spanS))
  return Array.from({ length: spans }, (_, i) => {
    const within = samples.filter(
      (s) => s.atS >= fromS + i * spanS && (s.atS < fromS + (i + 1) * spanS || i === spans - 1)
    )
    const lowest = (name: "api" | "worker") =>
      within.reduce((low, s) => (s[name] < low[name] ? s : low), within[0]!)
    return { samples: within.length, api: lowest("api"), worker: lowest("worker") }
  })
}

/** Least-squares slope of y over x. */
const slope = (points: ReadonlyArray<readonly [number, number]>) => {
  const n = points.length
  const mx = points.reduce((a, [x]) => a + x, 0) / n
  const my = points.reduce((a, [, y]) => a + y, 0) / n
  const sxy = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0)
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0)
  return sxy / sxx
}

describe(`soak (${profile}): mixed API load with a worker running`, () => {
  it(
    pick(
      "zero errors, every accepted job terminal; latency and RSS reported (the memory trend is checked in the long profile)",
      `zero errors, every accepted job terminal, latency reported, memory flat: RSS troughs grow under ${maxGrowthMiBPerMinute} MiB/min after warm-up`
    ),
    async () => {
      const queue = "soak"
      const durationMs = pick(8_000, 180_000)
      const maxRequests = pick(20_000, 1_000_000)
      const clients = 4
      const api = await chaos.api()
      const worker = chaos.worker("soak-w", { WORKER_QUEUES: queue, WORKER_CONCURRENCY: "16" })
      const accepted: Array<string> = []
      const cancelled = new Set<string>()
      const latencies: Record<Op, Array<number>> = { enqueue: [], get: [], list: [], cancel: [] }
      const errors: Array<{ op: Op; status: number; body: unknown }> = []
      const expected: Record<Op, ReadonlyArray<number>> = {
        enqueue: [201],
        get: [200],
        list: [200],
        // a job may already have finished (409) or be running (202)
        cancel: [200, 202, 409]
      }
      // warm up, then take the starting figures
      for (let i = 0; i < 50; i++) {
        const a = await call(api.url, "POST", "/jobs", { kind: "record", payload: { sleepMs: 1 }, queue })
        if (a.status === 201) accepted.push(a.body.id)
      }
      const rssStart = { api: rssMiB(api.process.pid), worker: rssMiB(worker.process.pid) }
      const rssSamples: Array<RssSample> = [{ atS: 0, api: rssStart.api, worker: rssStart.worker }]
      let sent = 0
      const began = Date.now()
      const until = began + durationMs
      const sampler = setInterval(
        () => {
          rssSamples.push({
            atS: Math.round((Date.now() - began) / 100) / 10,
            api: rssMiB(api.process.pid),
            worker: rssMiB(worker.process.pid)
          })
        },
        pick(1_000, 2_000)
      )
      const client = async () => {
        while (Date.now() < until && sent < maxRequests) {
          sent++
          const roll = Math.random()
          const some = () => accepted[Math.floor(Math.random() * accepted.length)]!
          const op: Op = roll < 0.45 ? "enqueue" : roll < 0.7 ? "get" : roll < 0.9 ? "list" : "cancel"
          let answer: Answer
          if (op === "enqueue") {
            answer = await call(api.url, "POST", "/jobs", {
              kind: "record",
              payload: { sleepMs: Math.floor(Math.random() * 20) },
              queue,
              priority: Math.floor(Math.random() * 3)
            })
            if (answer.status === 201) accepted.push(answer.body.id)
          } else if (op === "get") {
            answer = await call(api.url, "GET", `/jobs/${some()}`)
          } else if (op === "list") {
            const status = ["queued", "running", "succeeded", "cancelled"][Math.floor(Math.random() * 4)]
            answer = await call(api.url, "GET", `/jobs?queue=${queue}&status=${status}&limit=50`)
          } else {
            const id = some()
            answer = await call(api.url, "POST", `/jobs/${id}/cancel`)
            if (answer.status === 200 || answer.status === 202) cancelled.add(id)
          }
          latencies[op].push(answer.ms)
          if (!expected[op].includes(answer.status))
            errors.push({ op, status: answer.status, body: answer.body })
        }
      }
      await Promise.all(Array.from({ length: clients }, client))
      clearInterval(sampler)
      const elapsedMs = Date.now() - began
      const rssEnd = { api: rssMiB(api.process.pid), worker: rssMiB(worker.process.pid) }
      // after warm-up: the trough of each span, and their trend in MiB per minute
      const spans = troughs(rssSamples, warmUpS, elapsedMs / 1000)
      const trend = (name: "api" | "worker") =>
        Math.round(slope(spans.map((span) => [span[name].atS / 60, span[name][name]] as const)) * 10) / 10
      const rssGrowthMiBPerMinute = { api: trend("api"), worker: trend("worker") }
      const drainMs = await chaos.drained(queue, pick(60_000, 600_000))
      const verdict = await chaos.verdict(accepted)
      const figures = Object.fromEntries(
        (Object.keys(latencies) as Array<Op>).map((op) => [
          op,
          {
            n: latencies[op].length,
            p50: percentile(latencies[op], 50),
            p95: percentile(latencies[op], 95),
            p99: percentile(latencies[op], 99),
            max: percentile(latencies[op], 100)
          }
        ])
      )
      report("soak", {
        durationS: Math.round(elapsedMs / 1000),
        clients,
        requests: sent,
        requestsPerSecond: Math.round((sent / elapsedMs) * 1000),
        errors: errors.length,
        firstErrors: errors.slice(0, 3),
        latencyMs: figures,
        jobs: accepted.length,
        byStatus: verdict.byStatus,
        lost: verdict.lost.length + verdict.notTerminal.length,
        duplicates: verdict.duplicates.length,
        rssMiB: { start: rssStart, end: rssEnd, samples: rssSamples },
        rssTroughsMiB: {
          api: spans.map((span) => [span.api.atS, span.api.api]),
          worker: spans.map((span) => [span.worker.atS, span.worker.worker])
        },
        rssGrowthMiBPerMinute,
        drainMs
      })
      expect(errors).toEqual([])
      expect(verdict.lost).toEqual([])
      expect(verdict.notTerminal).toEqual([])
      expect(verdict.violations).toEqual([])
      // a cancelled job is cancelled, or it had already finished; every other one succeeded
      const wrong = await chaos.pg`
        SELECT id FROM jobs WHERE id = ANY(${accepted}::uuid[])
          AND status <> 'succeeded' AND NOT (status = 'cancelled' AND id = ANY(${[...cancelled]}::uuid[]))`
      expect(wrong).toEqual([])
      if (profile === "long") {
        // flat memory: enough spans, each sampled often enough to catch its trough, and no trend in them
        expect(spans.length).toBeGreaterThanOrEqual(6)
        expect(spans.filter((span) => span.samples < 8)).toEqual([])
        const growing = (["api", "worker"] as const).filter(
          (name) => !(rssGrowthMiBPerMinute[name] < maxGrowthMiBPerMinute)
        )
        expect(growing).toEqual([])
      }
      await chaos.stop(worker, "SIGTERM")
      await chaos.stop(api, "SIGTERM")
      expect(await chaos.running(queue)).toBe(0)
    },
    pick(90_000, 900_000)
  )
})
