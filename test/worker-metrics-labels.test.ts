/**
 * What a worker process exports, beyond the counts (test/worker-http.test.ts): bounded labels whatever queue
 * names clients choose, units, histogram ranges that reach hours, depth gauges at zero for known queues,
 * its default id, and the log level of a permanent failure.
 */
import { afterAll, describe, expect, it } from "bun:test"
import { hostname } from "node:os"
import { Queue } from "../src/queue/Queue.ts"
import { jobSecondsBoundaries } from "../src/worker/WorkerMetrics.ts"
import { kinds } from "./fixtures/recordingKinds.ts"
import { freePort } from "./support/ports.ts"
import { type Program, recordingKinds, spawnProgram } from "./support/processes.ts"
import { setupQueueTests, waitFor } from "./support/runtime.ts"

// first: hooks run in order, and one that throws (the database drop, on a saturated server) skips the rest
let worker: Program | undefined
afterAll(() => worker?.process.kill("SIGKILL"))
const { db, run } = await setupQueueTests(import.meta.file, kinds)
const port = freePort()
// no WORKER_ID: the default is under test
const { WORKER_ID: _, ...env } = process.env
const program = spawnProgram("src/worker.ts", {
  ...env,
  DATABASE_URL: db.url,
  JOBS_MODULE: recordingKinds,
  WORKER_METRICS_PORT: String(port),
  QUEUE_METRICS_INTERVAL: "100 millis",
  METRICS_MAX_QUEUES: "3"
})
worker = program
const base = `http://127.0.0.1:${port}`

const scrape = () =>
  waitFor("the worker's /metrics", () =>
    fetch(`${base}/metrics`)
      .then((r) => (r.status === 200 ? r.text() : undefined))
      .catch(() => undefined)
  )
const samples = (text: string) => text.split("\n").filter((line) => line !== "" && !line.startsWith("#"))
const queueLabels = (text: string) => new Set([...text.matchAll(/queue="([^"]*)"/g)].map((m) => m[1]))

/** Enqueues one noop job in each queue and waits until all of them succeeded. */
const runIn = async (queues: ReadonlyArray<string>) => {
  const jobs = await run(
    Queue.use((q) => q.enqueueMany(queues.map((queue) => ({ kind: "noop", payload: {}, queue }))))
  )
  const ids = jobs.map((j) => j.job.id)
  await waitFor(`${ids.length} jobs to succeed`, async () => {
    const done = await Promise.all(ids.map((id) => run(Queue.use((q) => q.get(id)))))
    return done.every((j) => j.status === "succeeded") ? true : undefined
  })
}

describe("worker metrics", () => {
  it("depth gauges read 0 for the queues it knows before any job, and the default worker id is the hostname", async () => {
    const text = await waitFor("the first depth sample", async () => {
      const scraped = await scrape()
      return scraped.includes("jobq_queue_jobs{") ? scraped : undefined
    })
    for (const status of ["queued", "retrying", "running"])
      expect(text).toContain(`jobq_queue_jobs{queue="default",status="${status}",`)
    expect(
      samples(text)
        .filter((l) => l.startsWith("jobq_queue_jobs{"))
        .every((l) => l.endsWith(" 0"))
    ).toBe(true)
    const health = (await (await fetch(`${base}/health`)).json()) as { workerId: string }
    expect(health.workerId).toStartWith(`${hostname()}-${program.process.pid}-`)
  })

  it("keeps the series count bounded whatever queue names clients choose: past METRICS_MAX_QUEUES they count as other", async () => {
    await runIn(Array.from({ length: 10 }, (_, i) => `client-queue-${i}`))
    const depthOf = (text: string) =>
      samples(text).find((l) => l.startsWith('jobq_queue_jobs{queue="other",status="queued"'))
    const first = await waitFor("a depth sample with the other label", async () => {
      const text = await scrape()
      return depthOf(text) === undefined ? undefined : text
    })
    await runIn(Array.from({ length: 30 }, (_, i) => `another-client-queue-${i}`))
    const second = await scrape()
    // default, the first 3 chosen queues, and other
    expect(queueLabels(second).size).toBe(5)
    expect(queueLabels(second).has("other")).toBe(true)
    expect(samples(second).length).toBe(samples(first).length)
    const claimed = samples(second)
      .filter((l) => l.startsWith('jobq_jobs_claimed_total{kind="noop"'))
      .reduce((n, l) => n + Number(l.split(" ").at(-1)), 0)
    expect(claimed).toBe(40)
  })

  it("says seconds for _seconds families and no unit for counts; job histograms reach hours", async () => {
    const text = await scrape()
    const units = text.split("\n").filter((l) => l.startsWith("# UNIT "))
    expect(units.length).toBeGreaterThan(0)
    for (const line of units) expect(line).toMatch(/^# UNIT [a-z_]+_seconds seconds$/)
    expect(units).toContain("# UNIT jobq_job_execution_seconds seconds")
    const top = jobSecondsBoundaries.at(-1)!
    expect(top).toBeGreaterThanOrEqual(3600)
    for (const family of ["jobq_job_execution_seconds", "jobq_job_queue_wait_seconds"])
      expect(samples(text).some((l) => l.startsWith(`${family}_bucket{`) && l.includes(`le="${top}"`))).toBe(
        true
      )
  })

  it("logs a permanent failure as a warning", async () => {
    const [enqueued] = await run(
      Queue.use((q) => q.enqueueMany([{ kind: "flaky", payload: { failTimes: 5 }, maxAttempts: 1 }]))
    )
    const line = await waitFor("the failure's log line", async () =>
      program
        .stdout()
        .split("\n")
        .find((l) => l.includes(enqueued!.job.id) && l.includes("job is failed_permanent"))
    )
    expect(JSON.parse(line).level).toBe("WARN")
  })
})
