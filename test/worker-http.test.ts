/**
 * The worker's own listener (/metrics, /health) in real worker processes, and the documented counters: each
 * moves when its event happens, and only then.
 */
import { afterAll, describe, expect, it } from "bun:test"
import { Effect, Layer, ManagedRuntime, Metric } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../src/db/Database.ts"
import { demoKinds } from "../src/kinds/DemoKinds.ts"
import { Queue } from "../src/queue/Queue.ts"
import { Prometheus } from "../src/telemetry/Prometheus.ts"
import * as Worker from "../src/worker/index.ts"
import { kinds } from "./fixtures/recordingKinds.ts"
import { freshDatabase } from "./support/database.ts"
import { freePort } from "./support/ports.ts"
import { exited, spawnWorker } from "./support/processes.ts"
import { type Exposition, readExposition } from "./support/prometheus.ts"
import { setupQueueTests, waitFor } from "./support/runtime.ts"

const { db, run } = await setupQueueTests(import.meta.file, kinds)
// a database of its own, dropped under the worker that runs on it
const doomedDb = await freshDatabase(`${import.meta.file}-gone`)
const listener = (port: number) => ({ port, base: `http://127.0.0.1:${port}` })
const metrics = listener(freePort())
const stall = listener(freePort())
const orphan = listener(freePort())
// "metrics" also rescues expired leases quickly and retries soon; "stalled" is stopped with SIGSTOP below
const worker = spawnWorker(db.url, "metrics", {
  WORKER_METRICS_PORT: String(metrics.port),
  WORKER_QUEUES: "m,later,counted",
  WORKER_RESCUE_INTERVAL: "200 millis",
  // whichever of the two is the elected maintainer (the rescuer), a stopped one is replaced within 1.3 s
  WORKER_LEADER_LEASE: "1 second",
  RETRY_BASE: "10 millis",
  RETRY_CAP: "20 millis",
  QUEUE_METRICS_INTERVAL: "200 millis"
})
const stalled = spawnWorker(db.url, "stalled", {
  WORKER_METRICS_PORT: String(stall.port),
  WORKER_QUEUES: "stall",
  WORKER_LEASE: "1 second",
  WORKER_LEASE_RENEW: "200 millis",
  WORKER_LEADER_LEASE: "1 second"
})
const orphaned = spawnWorker(doomedDb.url, "orphaned", {
  WORKER_METRICS_PORT: String(orphan.port),
  DATABASE_CONNECT_TIMEOUT: "1 second"
})
afterAll(async () => {
  for (const w of [stalled, orphaned]) w.process.kill("SIGKILL")
  worker.process.kill("SIGTERM")
  await Promise.all([exited(worker), exited(stalled), exited(orphaned)])
  await doomedDb.drop()
})

const scrape = async (base: string) => {
  const response = await fetch(`${base}/metrics`)
  expect(response.status).toBe(200)
  expect(response.headers.get("content-type")).toStartWith("text/plain; version=0.0.4")
  return readExposition(await response.text())
}

/** Waits until the listener serves the app (listening but not yet serving answers 503 "starting"). */
const serving = (base: string) =>
  waitFor(
    `the worker listener at ${base}`,
    () =>
      fetch(`${base}/health`)
        .then((r) => (r.status === 503 ? undefined : r))
        .catch(() => undefined),
    { timeoutMs: 20_000 }
  )

const enqueue = (job: { kind: string; payload: unknown; queue: string; maxAttempts?: number }) =>
  run(Queue.use((q) => q.enqueue(job))).then(({ job }) => job.id as string)

const jobOf = (id: string) => run(Queue.use((q) => q.get(id)))

const reaches = (id: string, accept: (job: Awaited<ReturnType<typeof jobOf>>) => boolean, what: string) =>
  waitFor(`job ${id} to be ${what}`, async () => {
    const job = await jobOf(id)
    return accept(job) ? job : undefined
  })

/** Scrapes `base` until `name{labels}` reads `expected`. */
const counterReaches = (base: string, name: string, labels: Record<string, string>, expected: number) =>
  waitFor(`${name} ${JSON.stringify(labels)} to reach ${expected}`, async () => {
    const scraped = await scrape(base)
    return scraped.has(name, labels) && scraped.value(name, labels) === expected ? scraped : undefined
  })

const jobCounters = [
  "jobq_jobs_succeeded_total",
  "jobq_jobs_retried_total",
  "jobq_jobs_failed_total",
  "jobq_jobs_cancelled_total",
  "jobq_jobs_released_total",
  "jobq_jobs_lease_lost_total"
] as const

/** Every per-job counter of (kind, queue) with its value: each is exported, at 0 until its event. */
const countersOf = (scraped: Exposition, labels: Record<string, string>) =>
  Object.fromEntries(jobCounters.map((name) => [name, scraped.value(name, labels)]))

const zeros = Object.fromEntries(jobCounters.map((name) => [name, 0]))

/** A counter that was never incremented may be absent; present, it must read 0. */
const untouched = (scraped: Exposition, name: string, labels: Record<string, string> = {}) =>
  scraped.has(name, labels) ? scraped.value(name, labels) : 0

describe("worker /metrics and /health", () => {
  it("/health answers 200 with the worker id while the database answers", async () => {
    const response = await serving(metrics.base)
    expect(response.status).toBe(200)
    expect(await response.json()).toMatchObject({ status: "ok", workerId: "metrics" })
  })

  it("/health answers 503 with a reason once the database is gone, and the worker stays up", async () => {
    expect((await serving(orphan.base)).status).toBe(200)
    await doomedDb.drop()
    const response = await waitFor(
      "the orphaned worker's /health to answer 503",
      () =>
        fetch(`${orphan.base}/health`).then(
          (r) => (r.status === 503 ? r : undefined),
          () => undefined
        ),
      { timeoutMs: 15_000, intervalMs: 100 }
    )
    expect(Number(response.headers.get("retry-after"))).toBeGreaterThan(0)
    expect(await response.json()).toMatchObject({
      status: "unavailable",
      workerId: "orphaned",
      reason: expect.stringContaining("the database did not answer")
    })
    expect(orphaned.process.exitCode).toBeNull()
  })

  it("is valid Prometheus text whose documented series move when jobs run", async () => {
    const before = await scrape(metrics.base)
    // nothing of kind noop ran on queue m yet: the series do not exist
    expect(before.has("jobq_jobs_succeeded_total", { kind: "noop", queue: "m" })).toBe(false)
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
      await reaches(job.id, (j) => ["succeeded", "failed_permanent"].includes(j.status), "finished")
    }
    const after = await counterReaches(
      metrics.base,
      "jobq_jobs_succeeded_total",
      { kind: "noop", queue: "m" },
      2
    )
    expect(after.value("jobq_jobs_claimed_total", { kind: "noop", queue: "m" })).toBe(2)
    expect(after.value("jobq_jobs_failed_total", { kind: "flaky", queue: "m" })).toBe(1)
    expect(after.histogramCount("jobq_job_execution_seconds", { kind: "noop", queue: "m" })).toBe(2)
    expect(after.histogramCount("jobq_job_queue_wait_seconds", { kind: "noop", queue: "m" })).toBe(2)
    expect(after.histogramCount("jobq_claim_duration_seconds")).toBeGreaterThan(0)
    const types = new Map(after.families.map((f) => [f.name, f.type]))
    expect(types.get("jobq_jobs_succeeded_total")).toBe("COUNTER")
    expect(types.get("jobq_job_execution_seconds")).toBe("HISTOGRAM")
    expect(types.get("jobq_jobs_running")).toBe("GAUGE")
    expect(after.value("jobq_jobs_running")).toBeGreaterThanOrEqual(0)
  })

  it("samples queue depth and the oldest ready job's age", async () => {
    await run(Queue.use((q) => q.enqueue({ kind: "noop", payload: {}, queue: "later", delayMs: 3_600_000 })))
    const scraped = await waitFor("the depth gauge for queue later", async () => {
      const s = await scrape(metrics.base)
      return s.has("jobq_queue_jobs", { queue: "later", status: "queued" }) &&
        s.value("jobq_queue_jobs", { queue: "later", status: "queued" }) === 1
        ? s
        : undefined
    })
    expect(scraped.value("jobq_queue_jobs", { queue: "later", status: "running" })).toBe(0)
    expect(scraped.value("jobq_queue_jobs", { queue: "later", status: "retrying" })).toBe(0)
    expect(scraped.value("jobq_queue_oldest_ready_age_seconds", { queue: "later" })).toBe(0)
  })
})

describe("the documented counters move when their event happens, and only then", () => {
  it("jobq_jobs_retried_total: a failed attempt scheduled for a retry", async () => {
    const id = await enqueue({ kind: "flaky", payload: { failTimes: 1 }, queue: "counted", maxAttempts: 3 })
    expect((await reaches(id, (j) => j.status === "succeeded", "succeeded")).attempts).toBe(2)
    const labels = { kind: "flaky", queue: "counted" }
    const scraped = await counterReaches(metrics.base, "jobq_jobs_succeeded_total", labels, 1)
    expect(countersOf(scraped, labels)).toEqual({
      ...zeros,
      jobq_jobs_succeeded_total: 1,
      jobq_jobs_retried_total: 1
    })
  })

  it("jobq_jobs_cancelled_total: a running job cancelled on request", async () => {
    const id = await enqueue({ kind: "sleep", payload: { ms: 60_000 }, queue: "counted" })
    await reaches(id, (j) => j.status === "running" && j.leaseOwner === "metrics", "running")
    expect((await run(Queue.use((q) => q.cancel(id)))).outcome).toBe("cancel_requested")
    await reaches(id, (j) => j.status === "cancelled", "cancelled")
    const labels = { kind: "sleep", queue: "counted" }
    const scraped = await counterReaches(metrics.base, "jobq_jobs_cancelled_total", labels, 1)
    expect(countersOf(scraped, labels)).toEqual({ ...zeros, jobq_jobs_cancelled_total: 1 })
  })

  it("jobq_jobs_rescued_total and jobq_jobs_lease_lost_total: a stalled worker's job rescued by another", async () => {
    await serving(stall.base)
    // nothing expired so far: the rescuer has rescued nothing
    expect(untouched(await scrape(metrics.base), "jobq_jobs_rescued_total")).toBe(0)
    const id = await enqueue({ kind: "sleep", payload: { ms: 60_000 }, queue: "stall", maxAttempts: 1 })
    await reaches(id, (j) => j.status === "running" && j.leaseOwner === "stalled", "running on stalled")
    // and its renewal recorded that the handler started, so the rescue counts the attempt (one not recorded
    // would be given back, and the job queued again instead of failing)
    await waitFor("the stalled worker to record the start", async () => {
      const rows = await run(
        SqlClient.SqlClient.use((sql) => sql`SELECT 1 FROM jobs WHERE id = ${id} AND attempt_started`)
      )
      return rows.length === 1 ? true : undefined
    })
    // the stalled worker stops renewing; its lease (1 s) expires and "metrics" rescues the job
    stalled.process.kill("SIGSTOP")
    let rescued: Awaited<ReturnType<typeof jobOf>>
    try {
      rescued = await reaches(id, (j) => j.status === "failed_permanent", "rescued")
    } finally {
      stalled.process.kill("SIGCONT")
    }
    expect(rescued.errors.at(-1)?.error).toContain("lease expired: worker stalled")
    const rescuer = await counterReaches(metrics.base, "jobq_jobs_rescued_total", {}, 1)
    // the rescuer never held the job: it lost no lease of it
    expect(rescuer.has("jobq_jobs_lease_lost_total", { kind: "sleep", queue: "stall" })).toBe(false)
    // woken, the stalled worker finds at its next renewal that the job is no longer its own
    const labels = { kind: "sleep", queue: "stall" }
    const victim = await counterReaches(stall.base, "jobq_jobs_lease_lost_total", labels, 1)
    expect(countersOf(victim, labels)).toEqual({ ...zeros, jobq_jobs_lease_lost_total: 1 })
    expect(untouched(victim, "jobq_jobs_rescued_total")).toBe(0)
  })

  it("jobq_jobs_released_total: a running job given back at shutdown (read from the exporter, which outlives the pool)", async () => {
    // the worker program's own /metrics closes before its pool drains, so this counter is read from an
    // exporter that outlives the pool, as in an application that embeds the worker
    const registry: Metric.MetricRegistry = new Map()
    const registryLayer = Layer.succeed(Metric.MetricRegistry, registry)
    const exporter = ManagedRuntime.make(
      Prometheus.layer("jobq-released-test").pipe(Layer.provide(registryLayer))
    )
    const pool = ManagedRuntime.make(
      Worker.layer({
        kinds: demoKinds,
        settings: {
          workerId: "releasing",
          queues: ["released"],
          concurrency: 1,
          prefetch: 0,
          shutdownGrace: "50 millis"
        }
      }).pipe(Layer.provide(Database.layerUrl(db.url, { maxConnections: 4 })), Layer.provide(registryLayer))
    )
    try {
      await pool.runPromise(Effect.void)
      const exported = () => exporter.runPromise(Prometheus.use((p) => p.scrape)).then(readExposition)
      const done = await enqueue({ kind: "noop", payload: {}, queue: "released" })
      await reaches(done, (j) => j.status === "succeeded", "succeeded")
      const held = await enqueue({ kind: "sleep", payload: { ms: 60_000 }, queue: "released" })
      await reaches(held, (j) => j.status === "running" && j.leaseOwner === "releasing", "running")
      expect((await exported()).value("jobq_jobs_released_total", { kind: "sleep", queue: "released" })).toBe(
        0
      )
      await pool.dispose()
      expect(await jobOf(held)).toMatchObject({ status: "queued", attempts: 0 })
      const scraped = await exported()
      expect(countersOf(scraped, { kind: "sleep", queue: "released" })).toEqual({
        ...zeros,
        jobq_jobs_released_total: 1
      })
      // the job that had finished was not released
      expect(countersOf(scraped, { kind: "noop", queue: "released" })).toEqual({
        ...zeros,
        jobq_jobs_succeeded_total: 1
      })
    } finally {
      await pool.dispose()
      await exporter.dispose()
    }
  })
})
