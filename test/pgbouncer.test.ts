/**
 * The API program behind PgBouncer in transaction mode, deployed as docs/runbook.md says ("Behind a
 * connection pooler"): DATABASE_URL through the pooler with DATABASE_POOLER=transaction (pipelining on, the
 * program's default, and no named prepared statements), DATABASE_LISTEN_URL straight to Postgres for its
 * LISTEN and gate sessions, the statement bounds set by the server for the role; a worker connected
 * directly. The pooler has fewer server connections (2) than the API has client connections (4), so
 * consecutive transactions of one client really do run on different server sessions.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { SQL } from "bun"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../src/db/Database.ts"
import { freshDatabase } from "./support/database.ts"
import * as PgBouncer from "./support/pgbouncer.ts"
import { freePort, waitUntilHealthy } from "./support/ports.ts"
import { exitCode, programs } from "./support/processes.ts"
import { sseReader } from "./support/sse.ts"

const db = await freshDatabase(import.meta.file)
const bouncer = await PgBouncer.start({
  server: db.url,
  poolMode: "transaction",
  poolSize: 2,
  settings: { query_wait_timeout: 10 }
})
const sql = new SQL({ url: db.url, max: 4 })
const { spawn, killAll } = programs()
afterAll(async () => {
  await killAll()
  await sql.close()
  await bouncer.stop()
  await db.drop()
})

const behindThePooler = (database: string) => ({
  DATABASE_URL: bouncer.url(database),
  DATABASE_POOLER: "transaction",
  DATABASE_POOL_MAX: "4"
})

describe("the API behind PgBouncer refuses to start", () => {
  it("without DATABASE_LISTEN_URL, naming it", async () => {
    const api = spawn("src/api.ts", { ...behindThePooler(db.name), PORT: String(freePort()) })
    expect(await exitCode(api, 20_000)).toBe(1)
    expect(api.stderr()).toContain("DATABASE_POOLER=transaction needs DATABASE_LISTEN_URL")
  })

  it("while the server does not bound its sessions (the pooler passes no statement_timeout)", async () => {
    // a database of its own: the pooler keeps the server sessions this start opens, unbounded
    const other = await freshDatabase(`${import.meta.file}-unbounded`)
    try {
      const api = spawn("src/api.ts", {
        ...behindThePooler(other.name),
        DATABASE_LISTEN_URL: other.url,
        PORT: String(freePort())
      })
      expect(await exitCode(api, 20_000)).toBe(1)
      expect(api.stderr()).toContain(
        "statement_timeout = 0 (none) where DATABASE_STATEMENT_TIMEOUT asks for 5000ms, and lock_timeout = 0 (none) where DATABASE_LOCK_TIMEOUT asks for 1000ms"
      )
      expect(api.stderr()).toContain(
        `ALTER ROLE "${new URL(db.url).username}" SET statement_timeout = '5000ms'`
      )
    } finally {
      await other.drop()
    }
  })
})

describe("the API behind PgBouncer in transaction mode, a worker connected directly", () => {
  let base = ""
  beforeAll(async () => {
    // the API's bounds, set by the server as the runbook says; here for this database only (the test
    // server's role is shared with every other test)
    await sql.unsafe(`ALTER ROLE CURRENT_USER IN DATABASE "${db.name}" SET statement_timeout = '5s'`)
    await sql.unsafe(`ALTER ROLE CURRENT_USER IN DATABASE "${db.name}" SET lock_timeout = '1s'`)
    const port = freePort()
    base = `http://127.0.0.1:${port}`
    spawn("src/api.ts", { ...behindThePooler(db.name), DATABASE_LISTEN_URL: db.url, PORT: String(port) })
    // the worker leaves the `parked` queue alone, so jobs there stay queued until cancelled
    spawn("src/worker.ts", {
      DATABASE_URL: db.url,
      DATABASE_POOL_MAX: "4",
      WORKER_ID: "pgbouncer-worker",
      WORKER_METRICS_PORT: "0",
      WORKER_QUEUES: "default,pgb-events,pgb-flow"
    })
    await waitUntilHealthy(`${base}/health`, 30_000)
  }, 60_000)

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body)
    })
  const statusOf = async (id: string) => {
    const [row] = await sql`SELECT status FROM jobs WHERE id = ${id}`
    return row?.status as string | undefined
  }

  it("enqueues one job and a batch, reads and lists them, as the database records them", async () => {
    const one = await post("/jobs", { kind: "noop", payload: {}, queue: "parked" })
    expect(one.status).toBe(201)
    const { id } = (await one.json()) as { id: string }
    const batch = await post("/jobs/batch", {
      jobs: Array.from({ length: 50 }, (_, i) => ({
        kind: "noop",
        payload: {},
        queue: "parked",
        priority: i % 3
      }))
    })
    expect(batch.status).toBe(200)
    const { jobs } = (await batch.json()) as { jobs: Array<{ id: string }> }
    expect(jobs).toHaveLength(50)
    const [{ n }] =
      await sql`SELECT count(*)::int AS n FROM jobs WHERE queue = 'parked' AND status = 'queued'`
    expect(n).toBe(51)

    const read = await fetch(`${base}/jobs/${id}`)
    expect(read.status).toBe(200)
    expect(((await read.json()) as { status: string }).status).toBe("queued")
    const listed = await fetch(`${base}/jobs?queue=parked&limit=100`)
    expect(listed.status).toBe(200)
    const page = (await listed.json()) as { jobs: Array<{ id: string }> }
    expect(new Set(page.jobs.map((j) => j.id))).toEqual(new Set([id, ...jobs.map((j) => j.id)]))
  })

  it("cancels a queued job", async () => {
    const created = await post("/jobs", { kind: "noop", payload: {}, queue: "parked" })
    const { id } = (await created.json()) as { id: string }
    const cancelled = await fetch(`${base}/jobs/${id}/cancel`, { method: "POST" })
    expect(cancelled.status).toBe(200)
    expect(await statusOf(id)).toBe("cancelled")
  })

  it("answers a repeated enqueue with the job the first one created", async () => {
    const key = `pgbouncer-${crypto.randomUUID()}`
    const first = await post(
      "/jobs",
      { kind: "noop", payload: {}, queue: "parked" },
      { "idempotency-key": key }
    )
    const again = await post(
      "/jobs",
      { kind: "noop", payload: {}, queue: "parked" },
      { "idempotency-key": key }
    )
    expect(first.status).toBe(201)
    expect(again.status).toBe(200)
    expect(again.headers.get("idempotent-replayed")).toBe("true")
    const a = (await first.json()) as { id: string }
    const b = (await again.json()) as { id: string }
    expect(b.id).toBe(a.id)
    const [{ n }] = await sql`SELECT count(*)::int AS n FROM jobs WHERE idempotency_key = ${key}`
    expect(n).toBe(1)
  })

  it("wakes a waiter when the worker finishes its job (LISTEN on the direct session)", async () => {
    const created = await post("/jobs", { kind: "sleep", payload: { ms: 300 } })
    const { id } = (await created.json()) as { id: string }
    const started = performance.now()
    // waiters are woken by notifications only: through a transaction pooler this wait would end at its
    // timeout with a 202
    const waited = await fetch(`${base}/jobs/${id}/wait?timeout=20s`)
    const elapsed = performance.now() - started
    expect(waited.status).toBe(200)
    expect(((await waited.json()) as { status: string }).status).toBe("succeeded")
    expect(elapsed).toBeLessThan(10_000)
    expect(await statusOf(id)).toBe("succeeded")
  })

  it("streams a job's events on GET /events", async () => {
    const controller = new AbortController()
    const response = await fetch(`${base}/events?queue=pgb-events`, { signal: controller.signal })
    expect(response.status).toBe(200)
    const stream = sseReader(response)
    try {
      const open = await stream.next(10_000)
      expect(open?.comments[0]).toStartWith("open ")
      const created = await post("/jobs", { kind: "noop", payload: {}, queue: "pgb-events" })
      const { id } = (await created.json()) as { id: string }
      const seen: Array<string> = []
      while (!seen.includes("succeeded")) {
        const message = await stream.next(10_000)
        if (message === undefined) throw new Error(`the stream ended after ${seen.join(", ")}`)
        if (message.event === undefined) continue
        const event = JSON.parse(message.data!) as { job: string; type: string }
        expect(event.job).toBe(id)
        seen.push(event.type)
      }
      expect(seen).toEqual(["enqueued", "started", "succeeded"])
      expect(await statusOf(id)).toBe("succeeded")
    } finally {
      controller.abort()
    }
  })

  it("runs a flow to its end", async () => {
    const created = await post("/flows", {
      jobs: [
        { name: "a", kind: "noop", payload: {}, queue: "pgb-flow" },
        { name: "b", kind: "noop", payload: {}, queue: "pgb-flow", dependsOn: ["a"] },
        { name: "c", kind: "noop", payload: {}, queue: "pgb-flow", dependsOn: ["a"] },
        { name: "d", kind: "noop", payload: {}, queue: "pgb-flow", dependsOn: ["b", "c"] }
      ]
    })
    expect(created.status).toBe(201)
    const flow = (await created.json()) as { id: string; jobs: Array<{ id: string; name: string }> }
    const last = flow.jobs.find((j) => j.name === "d")!
    const waited = await fetch(`${base}/jobs/${last.id}/wait?timeout=20s`)
    expect(waited.status).toBe(200)
    const rows = await sql`SELECT status FROM jobs WHERE flow_id = ${flow.id}`
    expect(rows.map((r: { status: string }) => r.status)).toEqual([
      "succeeded",
      "succeeded",
      "succeeded",
      "succeeded"
    ])
  })

  it("keeps 200 concurrent enqueues apart on 2 server connections, and a statement past the role's lock_timeout fails alone with a 503 that changed nothing", async () => {
    const created = await post("/jobs", { kind: "noop", payload: {}, queue: "parked" })
    const { id: locked } = (await created.json()) as { id: string }
    // a session holds the job's row: cancelling it waits for the lock until the role's lock_timeout (1 s)
    const holder = await sql.reserve()
    try {
      await holder`BEGIN`
      await holder`SELECT id FROM jobs WHERE id = ${locked} FOR UPDATE`
      const cancel = fetch(`${base}/jobs/${locked}/cancel`, { method: "POST" })
      const answers = await Promise.all(
        Array.from({ length: 200 }, async (_, i) => {
          const response = await post(
            "/jobs",
            { kind: "noop", payload: {}, queue: "pgb-load" },
            {
              "idempotency-key": `load-${i}`
            }
          )
          const body = (await response.json()) as { id: string; idempotencyKey: string | null }
          return { status: response.status, id: body.id, key: body.idempotencyKey }
        })
      )
      expect(answers.map((a) => a.status)).toEqual(answers.map(() => 201))
      // every answer names the job its own request created
      expect(answers.map((a) => a.key)).toEqual(answers.map((_, i) => `load-${i}`))
      const rows = await sql`SELECT id::text, idempotency_key FROM jobs WHERE queue = 'pgb-load'`
      expect(
        new Map(rows.map((r: { id: string; idempotency_key: string }) => [r.id, r.idempotency_key]))
      ).toEqual(new Map(answers.map((a) => [a.id, a.key])))
      const refused = await cancel
      expect(refused.status).toBe(503)
      expect(((await refused.json()) as { detail: string }).detail).toContain("lock")
      await holder`ROLLBACK`
    } finally {
      holder.release()
    }
    expect(await statusOf(locked)).toBe("queued")
  })
})

describe("a pipelined pool through PgBouncer in transaction mode", () => {
  it("answers each of 5,000 statements from 4 client connections on 2 server connections, one in seven failing alone", async () => {
    const outcomes = await Effect.runPromise(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        return yield* Effect.forEach(
          Array.from({ length: 5000 }, (_, i) => i),
          (i) =>
            sql<{ n: number }>`SELECT ${i}::int / ${i % 7 === 3 ? 0 : 1} AS n`.pipe(
              Effect.map((rows) => i % 7 !== 3 && rows[0]!.n === i),
              Effect.catch(() => Effect.succeed(i % 7 === 3))
            ),
          { concurrency: 200 }
        )
      }).pipe(
        Effect.provide(
          Database.layerUrl(bouncer.url(db.name), {
            maxConnections: 4,
            multiplex: 32,
            pooler: "transaction",
            listenUrl: db.url
          })
        )
      )
    )
    expect(outcomes.filter((ok) => !ok)).toEqual([])
  })
})
