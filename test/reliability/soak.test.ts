/**
 * Load and soak: the API and a worker as real processes under a mixed load (enqueue, get, list, cancel)
 * from concurrent clients for a fixed time and a bounded number of requests. Asserts zero errors and that
 * every accepted job ends terminal; reports latency percentiles per operation and the RSS of both processes
 * at the start and the end (flat memory). Short: seconds, in `npm test`; long: minutes (profile.ts).
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

describe(`soak (${profile}): mixed API load with a worker running`, () => {
  it(
    "zero errors, every accepted job terminal, latency reported, memory flat",
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
      const rssSamples: Array<{ atS: number; api: number; worker: number }> = []
      let sent = 0
      const began = Date.now()
      const until = began + durationMs
      const sampler = setInterval(
        () => {
          rssSamples.push({
            atS: Math.round((Date.now() - began) / 1000),
            api: rssMiB(api.process.pid),
            worker: rssMiB(worker.process.pid)
          })
        },
        pick(2_000, 15_000)
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
      // flat memory: neither process grows without bound over the run (generous: GC and caches settle)
      for (const name of ["api", "worker"] as const) {
        expect(rssEnd[name]).toBeLessThan(Math.max(rssStart[name] * 2, rssStart[name] + 150))
      }
      await chaos.stop(worker, "SIGTERM")
      await chaos.stop(api, "SIGTERM")
      expect(await chaos.running(queue)).toBe(0)
    },
    pick(90_000, 900_000)
  )
})
