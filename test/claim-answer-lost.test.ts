/**
 * A claim can commit while its answer never reaches the worker: the server is killed right after the commit
 * reached disk, or the network breaks. The worker lives on and heartbeats, so its row would hold those jobs
 * forever and the rescuer would never take them. The worker looks for them itself: at once after a claim
 * failed, and once a lease otherwise (a statement the server finished after the connection broke). Both
 * are shown here from the database's record: the job is handed back, its attempt refunded, and run.
 */
import { describe, expect, it } from "bun:test"
import { started } from "./support/processes.ts"
import { waitFor } from "./support/runtime.ts"
import { tcpProxy, throughProxy } from "./support/tcpProxy.ts"
import { setupTimedJobs } from "./support/timedJobs.ts"

const { db, sql, enqueueTimed, spansOf, spawn } = await setupTimedJobs(import.meta.file)
const server = new URL(db.url)

interface Row {
  readonly status: string
  readonly owner: string | null
  readonly attempts: number
  readonly errors: ReadonlyArray<{ readonly error: string }>
}
const jobsOf = (queue: string) =>
  sql<Row & { id: string }>(
    (s) => s`
      SELECT id, status, lease_owner AS owner, attempts, errors FROM jobs WHERE queue = ${queue}`
  )

// no rescue while the tests run: the rescuer would not take these jobs anyway (their worker lives), and
// must not be what hands them back
const quiet = { WORKER_RESCUE_INTERVAL: "5 minutes", WORKER_LEADER_LEASE: "5 minutes" }

describe("a claim whose answer never reached the worker", () => {
  it("is handed back as soon as the worker hears its claim failed, and runs", async () => {
    const queue = "answer-lost"
    const proxy = await tcpProxy({ host: server.hostname, port: Number(server.port || 5432) })
    const worker = spawn("answer-lost", {
      ...quiet,
      WORKER_QUEUES: queue,
      // longer than the test's deadline: the periodic look cannot be what finds the job
      WORKER_LEASE: "60 seconds",
      // one job at a time, none buffered: the claim of the second job is sent when the first one ends
      WORKER_CONCURRENCY: "1",
      WORKER_PREFETCH: "0",
      // every statement sent while answers are swallowed holds its connection: enough that the claim gets one
      DATABASE_POOL_MAX: "20",
      DATABASE_URL: throughProxy(db.url, proxy.port),
      RECORD_DATABASE_URL: db.url
    })
    await started(worker)
    await enqueueTimed(queue, 1, 3_000)
    const [first] = await waitFor("the first job to start", async () => {
      const rows = await sql<{ began: number }>(
        (s) =>
          s`SELECT extract(epoch FROM began_at)::float8 * 1000 AS began FROM job_spans WHERE queue = ${queue}`
      )
      return rows.length === 1 ? rows : undefined
    })
    const [second] = await enqueueTimed(queue, 1, 0)
    // from shortly before the first job ends, the worker's statements run and commit, and it hears nothing
    // back; late, so that few other statements of the worker hold the pool's connections by then (the claim
    // needs one already open: a new one cannot connect while answers are swallowed)
    await Bun.sleep(Math.max(0, first!.began + 3_000 - 400 - Date.now()))
    proxy.swallow()
    const claimed = await waitFor("the claim of the second job to commit", async () =>
      (await jobsOf(queue)).find((row) => row.id === second!.job.id && row.status === "running")
    )
    expect(claimed).toMatchObject({ owner: "answer-lost", attempts: 1 })
    // the worker never heard of it (still waiting for the answer); the connection breaks
    proxy.reset()
    const resetAt = Date.now()
    const done = await waitFor(
      "the job to be handed back and run",
      async () => (await jobsOf(queue)).find((row) => row.id === claimed.id && row.status === "succeeded"),
      { timeoutMs: 20_000 }
    )
    expect(Date.now() - resetAt).toBeLessThan(20_000)
    // one attempt: the lost claim's was refunded, as nothing ran
    expect(done).toMatchObject({ id: claimed.id, attempts: 1 })
    expect(done.errors).toHaveLength(1)
    expect(done.errors[0]!.error).toContain(
      "never received the answer of the claim that took it; attempt not counted"
    )
    expect((await spansOf(queue)).map((s) => s.worker)).toEqual(["answer-lost", "answer-lost"])
    expect(await Bun.file(worker.logFile).text()).toContain("handed 1 jobs back to the queue")
  })

  it("is handed back within a lease when no claim failed (the claim committed after the worker gave up on it)", async () => {
    const queue = "answer-late"
    const worker = spawn("answer-late", {
      ...quiet,
      WORKER_QUEUES: queue,
      WORKER_LEASE: "3 seconds",
      WORKER_LEASE_RENEW: "500 millis",
      RECORD_DATABASE_URL: db.url
    })
    await started(worker)
    // a job the worker's claim took without its knowing: written as the claim would write it
    await enqueueTimed(queue, 1, 0)
    // its completion committed (the span is written before it): nothing of the worker's touches it again
    await waitFor("the job to run", async () =>
      (await jobsOf(queue))[0]?.status === "succeeded" ? true : undefined
    )
    const taken = await sql(
      (s) => s`
        UPDATE jobs SET status = 'running', attempts = attempts + 1, attempt_started = false,
                        lease_owner = 'answer-late', started_at = now(), finished_at = NULL, result = NULL
        WHERE queue = ${queue} RETURNING id`
    )
    expect(taken).toHaveLength(1)
    const since = Date.now()
    const [done] = await waitFor(
      "the job to be handed back and run again",
      async () => {
        const rows = await jobsOf(queue)
        return rows[0]?.status === "succeeded" && (await spansOf(queue)).length === 2 ? rows : undefined
      },
      { timeoutMs: 15_000 }
    )
    // within a lease (3 s) and the look after it, not when the worker stops
    expect(Date.now() - since).toBeLessThan(8_000)
    expect(done).toMatchObject({ attempts: 2 })
    expect(done!.errors.at(-1)!.error).toContain(
      "never received the answer of the claim that took it; attempt not counted"
    )
    expect((await spansOf(queue)).map((s) => s.worker)).toEqual(["answer-late", "answer-late"])
  })
})
