/**
 * How a worker learns of new jobs and of cancel requests, each path tested alone, the other made impossible:
 *
 * - LISTEN/NOTIFY: a worker that polls and renews its leases once a minute, so whatever it does within a
 *   few seconds came by notification (or by the catch-up claim after LISTEN reconnected).
 * - Polling and the lease-renewal fallback: a worker on a database whose notification triggers are
 *   disabled, so nothing it does can have come by notification; each test also listens and sees none.
 *
 * Each worker has its own database and application_name, and the tests enqueue and cancel through a pool
 * of their own, so killing the worker's sessions leaves the test's alone.
 */
import { afterAll, describe, expect, it } from "bun:test"
import { SQL } from "bun"
import { Effect, Layer, ManagedRuntime } from "effect"
import * as Database from "../src/db/Database.ts"
import type { Job } from "../src/domain/Job.ts"
import { demoKinds } from "../src/kinds/DemoKinds.ts"
import * as QueueLayer from "../src/queue/layer.ts"
import { Queue } from "../src/queue/Queue.ts"
import * as Worker from "../src/worker/index.ts"
import { blocking, finalized, gated, openGate, stamp, started } from "./fixtures/observedKinds.ts"
import { freshDatabase } from "./support/database.ts"
import { notificationsDuring, sentinel } from "./support/notifications.ts"
import { waitFor } from "./support/runtime.ts"

const kinds = [...demoKinds, blocking, stamp, gated]
/** Far below the once-a-minute poll and renewal of the LISTEN-only worker. */
const deadlineMs = 5_000

const setup = async (label: string, settings: Worker.WorkerOptions["settings"], silent: boolean) => {
  const db = await freshDatabase(`worker-wakeups-${label}`)
  const admin = new SQL({ url: db.url, max: 1 })
  if (silent) {
    await admin`ALTER TABLE jobs DISABLE TRIGGER jobs_notify_inserted`
    await admin`ALTER TABLE jobs DISABLE TRIGGER jobs_notify_cancel`
  }
  const applicationName = `jobq-wakeups-${label}`
  const worker = ManagedRuntime.make(
    Worker.layer({ kinds, settings: { concurrency: 4, shutdownGrace: "100 millis", ...settings } }).pipe(
      Layer.provide(Database.layerUrl(db.url, { applicationName }))
    )
  )
  const client = ManagedRuntime.make(
    QueueLayer.layer(kinds).pipe(
      Layer.provideMerge(Database.layerUrl(db.url, { applicationName: `${applicationName}-client` }))
    )
  )
  afterAll(async () => {
    await worker.dispose()
    await client.dispose()
    await admin.close()
    await db.drop()
  })
  await worker.runPromise(Effect.void)

  const enqueue = (kind: string, payload: unknown) =>
    client.runPromise(Queue.use((q) => q.enqueue({ kind, payload }))).then((e) => e.job)
  const cancel = (id: string) => client.runPromise(Queue.use((q) => q.cancel(id)))
  const startedWithin = (id: string, what: string) =>
    waitFor(`${what} to start`, async () => started.get(id), { timeoutMs: deadlineMs })
  const settled = (id: string, status: Job["status"]) =>
    waitFor(
      `job ${id} to be ${status}`,
      async () => {
        const job = await client.runPromise(Queue.use((q) => q.get(id)))
        return job.status === status ? job : undefined
      },
      { timeoutMs: deadlineMs }
    )
  // a LISTEN session runs nothing but its LISTEN, so its last query says what it is
  const listenSessions = async () => {
    const [{ n }] = await admin`
      SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE application_name = ${applicationName} AND query LIKE 'LISTEN%'`
    return n as number
  }
  /** Waits until the worker listens on both of its channels (at start, or after its sessions were killed). */
  const listening = () =>
    waitFor("the worker to LISTEN on both channels", async () =>
      (await listenSessions()) === 2 ? true : undefined
    )
  /** Terminates the worker's LISTEN sessions, or its pooled ones; answers once they are gone. */
  const terminate = async (sessions: "listen" | "pool") => {
    await listening()
    const rows: Array<{ pid: number }> = await admin`
      SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE application_name = ${applicationName} AND (query LIKE 'LISTEN%') = ${sessions === "listen"}`
    const pids = rows.map((r) => r.pid)
    await waitFor("the terminated sessions to be gone", async () => {
      const [{ left }] =
        await admin`SELECT count(*)::int AS left FROM pg_stat_activity WHERE pid = ANY(${pids})`
      return left === 0 ? true : undefined
    })
    return pids
  }
  /** Runs `action` while listening on `channel`, and answers every payload that came before a sentinel. */
  const heardDuring = async <A>(channel: string, action: () => Promise<A>) => {
    const marker = `sentinel-${crypto.randomUUID()}`
    const { result, seen } = await client.runPromise(
      notificationsDuring(
        channel,
        Effect.promise(action).pipe(Effect.tap(() => sentinel(channel, marker))),
        (payload) => payload === marker
      )
    )
    return { result, heard: seen.filter((payload) => payload !== marker) }
  }
  return { enqueue, cancel, startedWithin, settled, listening, terminate, heardDuring }
}

const listenOnly = await setup(
  "listen",
  { pollInterval: "1 minute", renewInterval: "1 minute", lease: "10 minutes" },
  false
)
const silent = await setup("silent", { pollInterval: "200 millis", renewInterval: "200 millis" }, true)

describe("a worker that only hears notifications (poll and lease renewal once a minute)", () => {
  const w = listenOnly

  it("picks up a job enqueued right after its LISTEN sessions were killed: LISTEN reconnected", async () => {
    expect((await w.terminate("listen")).length).toBe(2)
    // in flight while LISTEN is down: found by the catch-up claim on reconnection, or by the notification
    // on the new session; without reconnection nothing would look for it for a minute
    const first = await w.enqueue("stamp", { sleepMs: 0 })
    await w.startedWithin(first.id, "the job enqueued while LISTEN was down")
    // and notifications flow on the new session (the catch-up claim happens once per reconnection)
    const second = await w.enqueue("stamp", { sleepMs: 0 })
    await w.startedWithin(second.id, "the job enqueued after LISTEN reconnected")
    await w.settled(first.id, "succeeded")
    await w.settled(second.id, "succeeded")
  })

  it("a cancel request reaches a running job by NOTIFY: interrupted, finalized, cancelled", async () => {
    await w.listening()
    const job = await w.enqueue("blocking", {})
    await w.startedWithin(job.id, "the blocking job")
    expect((await w.cancel(job.id)).outcome).toBe("cancel_requested")
    const done = await w.settled(job.id, "cancelled")
    expect(finalized.has(job.id)).toBe(true)
    expect(done.attempts).toBe(1)
  })
})

describe("a worker on a database that sends no notifications (poll and renew every 200 ms)", () => {
  const w = silent

  it("polling finds jobs, also with a job in flight while its pooled sessions are killed", async () => {
    const inFlight = await w.enqueue("gated", { gate: "poll" })
    await w.startedWithin(inFlight.id, "the gated job")
    expect((await w.terminate("pool")).length).toBeGreaterThan(0)
    const { result: next, heard } = await w.heardDuring("jobq_ready", () =>
      w.enqueue("stamp", { sleepMs: 0 })
    )
    expect(heard).toEqual([])
    await w.startedWithin(next.id, "the job enqueued after the kill")
    openGate("poll")
    await w.settled(inFlight.id, "succeeded")
    await w.settled(next.id, "succeeded")
  })

  it("a cancel request reaches a running job with the lease renewal: interrupted, finalized, cancelled", async () => {
    const job = await w.enqueue("blocking", {})
    await w.startedWithin(job.id, "the blocking job")
    const { result, heard } = await w.heardDuring("jobq_cancel", () => w.cancel(job.id))
    expect(result.outcome).toBe("cancel_requested")
    expect(heard).toEqual([])
    const done = await w.settled(job.id, "cancelled")
    expect(finalized.has(job.id)).toBe(true)
    expect(done.attempts).toBe(1)
  })
})
