/**
 * The events gate and feed across processes: a client follows `GET /events` on one API process, jobs are
 * enqueued and cancelled through a second API process, and a worker process of their own runs them. The
 * gate the first API holds opens the database's writes for every session (the second API's row triggers,
 * the worker's batch statements), and the first API's feed reads them all.
 */
import { afterAll, describe, expect, it } from "bun:test"
import { fileURLToPath } from "node:url"
import { SQL } from "bun"
import { freshDatabase } from "../support/database.ts"
import { freePort, waitUntilHealthy } from "../support/ports.ts"
import { waitFor } from "../support/runtime.ts"
import { eventData, type SseMessage, sseReader } from "../support/sse.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))
const db = await freshDatabase(import.meta.file)
const children: Array<Bun.Subprocess> = []
const sql = new SQL({ url: db.url, max: 1 })
afterAll(async () => {
  for (const child of children) child.kill("SIGTERM")
  await Promise.all(children.map((child) => child.exited))
  await sql.close()
  await db.drop()
})

const spawn = (program: string, env: Record<string, string>) => {
  const child = Bun.spawn([process.execPath, program], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: db.url, LOG_LEVEL: "warn", ...env },
    stdout: "ignore",
    stderr: "ignore"
  })
  children.push(child)
  return child
}

const startApi = async () => {
  const port = freePort()
  spawn("src/api.ts", { PORT: String(port) })
  const base = `http://127.0.0.1:${port}`
  await waitUntilHealthy(`${base}/health`)
  return base
}

const summary = (m: SseMessage) => `${m.event} ${eventData(m).job}`

describe("events across processes", () => {
  it("follows on one API what another API and a worker process do", async () => {
    const [following, enqueuing] = await Promise.all([startApi(), startApi()])
    const response = await fetch(`${following}/events?queue=xp`)
    expect(response.status).toBe(200)
    const stream = sseReader(response)
    expect((await stream.next(20_000))?.comments[0]).toStartWith("open ")
    const enqueue = async (body: Record<string, unknown>) => {
      const answer = await fetch(`${enqueuing}/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ kind: "noop", payload: {}, queue: "xp", ...body })
      })
      expect(answer.status).toBe(201)
      return ((await answer.json()) as { id: string }).id
    }
    // through the second API: three jobs to run, one an hour away, cancelled before anyone runs it
    const later = await enqueue({ delayMs: 3_600_000 })
    const cancelled = await fetch(`${enqueuing}/jobs/${later}/cancel`, { method: "POST" })
    expect(cancelled.status).toBe(200)
    const jobs = [await enqueue({}), await enqueue({}), await enqueue({})]
    const first = await stream.events(5, 20_000)
    expect(first.map(summary)).toEqual([
      `enqueued ${later}`,
      `cancelled ${later}`,
      ...jobs.map((j) => `enqueued ${j}`)
    ])
    // a worker process of its own runs them: its claim and completion statements write the events
    spawn("src/worker.ts", { WORKER_ID: "xp-worker", WORKER_METRICS_PORT: "0", WORKER_QUEUES: "xp" })
    const run = await stream.events(6, 30_000)
    const started = run.filter((m) => m.event === "started").map((m) => eventData(m).job)
    const succeeded = run.filter((m) => m.event === "succeeded").map((m) => eventData(m).job)
    expect([...started].sort()).toEqual([...jobs].sort())
    expect([...succeeded].sort()).toEqual([...jobs].sort())
    // each job starts before it succeeds
    for (const job of jobs)
      expect(run.findIndex((m) => m.event === "started" && eventData(m).job === job)).toBeLessThan(
        run.findIndex((m) => m.event === "succeeded" && eventData(m).job === job)
      )
    // the database's own record: the worker's events were written as batch rows, not one row per job
    const rows = await waitFor("the worker's events in the log", async () => {
      const found: Array<{ type: string; size: number }> = await sql`
        SELECT type, size FROM event_log WHERE jobs IS NOT NULL ORDER BY tx, id`
      return found.reduce((n, r) => n + r.size, 0) >= 6 ? found : undefined
    })
    expect(rows.every((r) => r.type === "started" || r.type === "succeeded")).toBe(true)
    await stream.cancel()
  })
})
