import { afterAll, describe, expect, it } from "bun:test"
import { Queue } from "../src/queue/Queue.ts"
import { kinds } from "./fixtures/recordingKinds.ts"
import { freePort } from "./support/ports.ts"
import { exited, spawnWorker } from "./support/processes.ts"
import { parseFamilies } from "./support/prometheus.ts"
import { setupQueueTests, waitFor } from "./support/runtime.ts"

const { db, run } = await setupQueueTests(import.meta.file, kinds)
const port = freePort()
const worker = spawnWorker(db.url, "metrics", {
  WORKER_METRICS_PORT: String(port),
  QUEUE_METRICS_INTERVAL: "200 millis"
})
afterAll(async () => {
  worker.process.kill("SIGTERM")
  await exited(worker)
})
const base = `http://127.0.0.1:${port}`

const scrape = async () => {
  const response = await fetch(`${base}/metrics`)
  expect(response.status).toBe(200)
  expect(response.headers.get("content-type")).toStartWith("text/plain; version=0.0.4")
  const text = await response.text()
  const families = parseFamilies(text)
  const value = (name: string, labels: Record<string, string> = {}) => {
    const family = families.find((f) => f.name === name)
    const sample = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
    return Number(sample?.value ?? sample?.count ?? 0)
  }
  // the parser drops a labelled histogram's count: read `<name>_count{...}` from the text
  const histogramCount = (name: string, labels: Record<string, string> = {}) => {
    const line = text
      .split("\n")
      .find(
        (l) =>
          l.startsWith(`${name}_count{`) &&
          Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`))
      )
    return Number(line?.split(" ").at(-1) ?? 0)
  }
  return { families, value, histogramCount }
}

describe("worker /metrics and /health", () => {
  it("/health answers 200 with the worker id while the database answers", async () => {
    const response = await waitFor("the worker's listener", () =>
      fetch(`${base}/health`)
        // listening but not yet serving the app answers 503 "starting": that is not an answer yet
        .then((r) => (r.status === 503 ? undefined : r))
        .catch(() => undefined)
    )
    expect(response.status).toBe(200)
    expect(await response.json()).toMatchObject({ status: "ok", workerId: "metrics" })
  })

  it("is valid Prometheus text whose documented series move when jobs run", async () => {
    const before = await scrape()
    const jobs = await run(
      Queue.use((q) =>
        q.enqueueMany([
          { kind: "noop", payload: {}, queue: "m" },
          { kind: "noop", payload: {}, queue: "m" },
          { kind: "flaky", payload: { failTimes: 5 }, queue: "m", maxAttempts: 1 }
        ])
      )
    )
    for (const { job } of jobs) {
      await waitFor(`job ${job.id} to finish`, async () => {
        const now = await run(Queue.use((q) => q.get(job.id)))
        return ["succeeded", "failed_permanent"].includes(now.status) ? now : undefined
      })
    }
    const after = await waitFor("the counters to move", async () => {
      const scraped = await scrape()
      return scraped.value("jobq_jobs_succeeded_total", { kind: "noop", queue: "m" }) -
        before.value("jobq_jobs_succeeded_total", { kind: "noop", queue: "m" }) ===
        2
        ? scraped
        : undefined
    })
    expect(after.value("jobq_jobs_claimed_total", { kind: "noop", queue: "m" })).toBe(2)
    expect(after.value("jobq_jobs_failed_total", { kind: "flaky", queue: "m" })).toBe(1)
    expect(after.histogramCount("jobq_job_execution_seconds", { kind: "noop", queue: "m" })).toBe(2)
    expect(after.histogramCount("jobq_job_queue_wait_seconds", { kind: "noop", queue: "m" })).toBe(2)
    expect(after.histogramCount("jobq_claim_duration_seconds")).toBeGreaterThan(0)
    const types = new Map(after.families.map((f) => [f.name, f.type]))
    expect(types.get("jobq_jobs_succeeded_total")).toBe("COUNTER")
    expect(types.get("jobq_job_execution_seconds")).toBe("HISTOGRAM")
    expect(types.get("jobq_jobs_running")).toBe("GAUGE")
  })

  it("samples queue depth and the oldest ready job's age", async () => {
    await run(Queue.use((q) => q.enqueue({ kind: "noop", payload: {}, queue: "later", delayMs: 3_600_000 })))
    const scraped = await waitFor("the depth gauge for queue later", async () => {
      const s = await scrape()
      return s.value("jobq_queue_jobs", { queue: "later", status: "queued" }) === 1 ? s : undefined
    })
    expect(scraped.value("jobq_queue_jobs", { queue: "later", status: "running" })).toBe(0)
    expect(scraped.value("jobq_queue_oldest_ready_age_seconds", { queue: "later" })).toBe(0)
  })
})
