/**
 * A worker that loses its database connection keeps no job past its lease (its row's in `workers`, which
 * only its heartbeat extends), and its job counts no more against its queue's concurrency limit once that
 * lease ran out. One worker reaches the database through a
 * proxy the test cuts; another reaches it directly; the queue's limit is 1 and no rescue runs meanwhile.
 */
import { describe, expect, it } from "bun:test"
import { Queue } from "../src/queue/Queue.ts"
import { started } from "./support/processes.ts"
import { waitFor } from "./support/runtime.ts"
import { tcpProxy, throughProxy } from "./support/tcpProxy.ts"
import { setupTimedJobs } from "./support/timedJobs.ts"

const { db, run, sql, enqueueTimed, spansOf, spawn } = await setupTimedJobs(import.meta.file)
const server = new URL(db.url)
const proxy = await tcpProxy({ host: server.hostname, port: Number(server.port || 5432) })

describe("a worker cut off from the database", () => {
  it("stops its job before the lease runs out; then the limit lets another worker start the next job", async () => {
    const queue = "cut-off"
    await run(Queue.use((q) => q.setLimits(queue, { concurrencyLimit: 1 })))
    // no rescue while the test runs: the first worker is the maintainer, its election lease outlives the test
    const common = {
      WORKER_QUEUES: queue,
      WORKER_LEASE: "2 seconds",
      WORKER_LEASE_RENEW: "200 millis",
      WORKER_RESCUE_INTERVAL: "60 seconds",
      WORKER_LEADER_LEASE: "60 seconds"
    }
    const cutOff = spawn("cut-off", {
      ...common,
      DATABASE_URL: throughProxy(db.url, proxy.port),
      RECORD_DATABASE_URL: db.url
    })
    await started(cutOff)
    await enqueueTimed(queue, 2, 20_000)
    await waitFor("the cut-off worker to run a job", async () =>
      (await sql((s) => s`SELECT 1 FROM job_spans WHERE worker = 'cut-off'`)).length === 1 ? true : undefined
    )
    const direct = spawn("direct", common)
    await started(direct)

    await proxy.cut()
    // the job's lease is its worker's (migration 0013): the row's, which the cut worker can no longer extend
    const [first] = await sql<{ id: string; expires: number }>(
      (s) => s`
        SELECT j.id, extract(epoch FROM coalesce(j.lease_expires_at, w.lease_expires_at))::float8 * 1000 AS expires
        FROM jobs j JOIN workers w ON w.id = j.lease_owner
        WHERE j.queue = ${queue} AND j.lease_owner = 'cut-off'`
    )
    const next = await waitFor(
      "the other worker to start the second job",
      async () =>
        (
          await sql<{ claimed: number }>(
            (s) => s`
              SELECT extract(epoch FROM claimed_at)::float8 * 1000 AS claimed FROM job_spans WHERE worker = 'direct'`
          )
        )[0],
      { timeoutMs: 8_000 }
    )
    // the first job's handler ended (interrupted), and recorded when
    const stopped = (await spansOf(queue)).find((s) => s.worker === "cut-off")
    expect(stopped).toBeDefined()
    // the cut-off worker stopped its handler before its lease ran out (as the database last renewed it)
    expect(stopped!.ended).toBeLessThan(first!.expires)
    // and the other worker's job was leased only after that: never two at once under the limit of 1
    expect(next.claimed).toBeGreaterThanOrEqual(stopped!.ended)
    expect(next.claimed).toBeGreaterThanOrEqual(first!.expires)
    // nothing rescued the first job: it counted no more only because its lease had run out
    const [still] = await sql<{ status: string; owner: string }>(
      (s) => s`SELECT status, lease_owner AS owner FROM jobs WHERE id = ${first!.id}`
    )
    expect(still).toEqual({ status: "running", owner: "cut-off" })
    expect(await Bun.file(cutOff.logFile).text()).toContain("could not renew the leases of 1 jobs")
  })

  it("stops every job whose lease runs out at once, not each after the one before has finished stopping", async () => {
    const queue = "cut-off-many"
    const cut = await tcpProxy({ host: server.hostname, port: Number(server.port || 5432) })
    const worker = spawn("cut-off-many", {
      WORKER_QUEUES: queue,
      WORKER_CONCURRENCY: "3",
      WORKER_PREFETCH: "0",
      WORKER_LEASE: "2 seconds",
      WORKER_LEASE_RENEW: "200 millis",
      WORKER_RESCUE_INTERVAL: "60 seconds",
      WORKER_LEADER_LEASE: "60 seconds",
      DATABASE_URL: throughProxy(db.url, cut.port),
      RECORD_DATABASE_URL: db.url
    })
    await started(worker)
    // each handler takes 1.5 s to stop once interrupted (its finalizer records the interrupt first)
    await enqueueTimed(queue, 3, 30_000, 1_500)
    await waitFor("the three jobs to run", async () =>
      (await sql((s) => s`SELECT 1 FROM job_spans WHERE queue = ${queue}`)).length === 3 ? true : undefined
    )
    const [lease] = await sql<{ expires: number }>(
      (s) => s`SELECT extract(epoch FROM lease_expires_at)::float8 * 1000 AS expires FROM workers
               WHERE id = 'cut-off-many'`
    )
    await cut.cut()
    const spans = await waitFor(
      "the three jobs to be stopped",
      async () => {
        const ended = await spansOf(queue)
        return ended.length === 3 ? ended : undefined
      },
      { timeoutMs: 10_000 }
    )
    const ends = spans.map((s) => s.ended)
    // one after the other, the third was interrupted 3 s after the first, past its lease
    expect(Math.max(...ends) - Math.min(...ends)).toBeLessThan(1_000)
    expect(Math.max(...ends)).toBeLessThan(lease!.expires + 2_000)
  })
})
