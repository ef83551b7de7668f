/**
 * `GET /jobs/{id}/wait` and `POST /jobs?wait=` against a real worker running in this process: jobs finish
 * as workers finish them (succeeded, failed, cancelled), and the waits end on the database's notification.
 */
import { afterAll, describe, expect, it } from "bun:test"
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { ApiConfig } from "../../src/Config.ts"
import * as Database from "../../src/db/Database.ts"
import { defineKind, PermanentError } from "../../src/domain/JobKind.ts"
import { apiLayer, makeWebHandler } from "../../src/http/handler.ts"
import { demoKinds } from "../../src/kinds/DemoKinds.ts"
import * as Worker from "../../src/worker/index.ts"
import { blocking, gated, openGate, started } from "../fixtures/observedKinds.ts"
import { expectProblem, json, setupApiTests } from "../support/api.ts"
import { readExposition } from "../support/prometheus.ts"
import { waitFor } from "../support/runtime.ts"

const refuses = defineKind({
  name: "refuses",
  payload: Schema.Struct({}),
  handler: () => Effect.fail(new PermanentError({ message: "this can never work" }))
})
const kinds = [...demoKinds, blocking, gated, refuses]
// registered before the database's teardown, so that the worker stops first
let disposeWorker = async () => {}
afterAll(() => disposeWorker())
const api = await setupApiTests(import.meta.file, { kinds })
const { request, postJson, run } = api

// a worker that serves every queue but "parked", where jobs wait untouched
const worker = ManagedRuntime.make(
  Worker.layer({
    kinds,
    settings: { concurrency: 8, queues: ["default"], pollInterval: "5 seconds", renewInterval: "200 millis" }
  }).pipe(Layer.provide(Database.layerUrl(api.db.url, { applicationName: "jobq-wait-worker" })))
)
await worker.runPromise(Effect.void)
disposeWorker = () => worker.dispose()

const enqueue = async (body: unknown, query = "") => {
  const response = await postJson(`/jobs${query}`, body)
  return { response, job: await json(response) }
}

const waiters = async () => readExposition(await (await request("/metrics")).text()).value("jobq_job_waiters")

const untilWaiters = (n: number) =>
  waitFor(`${n} waiters`, async () => ((await waiters()) === n ? true : undefined))

const untilStarted = (id: string) => waitFor(`job ${id} to start`, async () => started.get(id))

describe("GET /jobs/{id}/wait", () => {
  it("answers 200 at once for a job already finished", async () => {
    const { job } = await enqueue({ kind: "noop", payload: {} })
    const done = await json(await request(`/jobs/${job.id}/wait?timeout=10s`))
    expect(done.status).toBe("succeeded")
    const started = performance.now()
    const response = await request(`/jobs/${job.id}/wait?timeout=30s`)
    expect(performance.now() - started).toBeLessThan(2_000)
    expect(response.status).toBe(200)
    expect(await json(response)).toMatchObject({ id: job.id, status: "succeeded" })
  })

  it("answers 200 as soon as the job finishes during the wait", async () => {
    const { job } = await enqueue({ kind: "gated", payload: { gate: "during-wait" } })
    await untilStarted(job.id)
    const waiting = request(`/jobs/${job.id}/wait?timeout=30`)
    await untilWaiters(1)
    const opened = performance.now()
    openGate("during-wait")
    const response = await waiting
    expect(performance.now() - opened).toBeLessThan(5_000)
    expect(response.status).toBe(200)
    expect(await json(response)).toMatchObject({ status: "succeeded", result: { opened: true } })
    expect(await waiters()).toBe(0)
  })

  it("answers 202 with the job as it stands at the timeout, and lets the waiter go", async () => {
    const { job } = await enqueue({ kind: "blocking", payload: {} })
    await untilStarted(job.id)
    const started = performance.now()
    const response = await request(`/jobs/${job.id}/wait?timeout=300ms`)
    expect(performance.now() - started).toBeGreaterThanOrEqual(290)
    expect(response.status).toBe(202)
    expect(response.headers.get("content-type")).toStartWith("application/json")
    expect(await json(response)).toMatchObject({ id: job.id, status: "running" })
    expect(await waiters()).toBe(0)
    // and a cancel ends a wait: the worker interrupts the job and settles it cancelled
    const waiting = request(`/jobs/${job.id}/wait?timeout=30s`)
    await untilWaiters(1)
    expect((await request(`/jobs/${job.id}/cancel`, { method: "POST" })).status).toBe(202)
    const cancelled = await waiting
    expect(cancelled.status).toBe(200)
    expect(await json(cancelled)).toMatchObject({ status: "cancelled" })
  })

  it("ends on a permanent failure", async () => {
    const { job } = await enqueue({ kind: "refuses", payload: {} })
    const response = await request(`/jobs/${job.id}/wait?timeout=20s`)
    expect(response.status).toBe(200)
    expect(await json(response)).toMatchObject({
      status: "failed_permanent",
      lastError: "PermanentError: this can never work"
    })
  })

  it("answers 404 for an unknown or malformed id, and for a job deleted while waited for", async () => {
    await expectProblem(await request(`/jobs/${crypto.randomUUID()}/wait?timeout=1s`), 404, "job-not-found")
    await expectProblem(await request("/jobs/not-a-uuid/wait"), 404, "job-not-found")
    const { job } = await enqueue({ kind: "noop", payload: {}, queue: "parked" })
    const waiting = request(`/jobs/${job.id}/wait?timeout=20s`)
    await untilWaiters(1)
    await run(Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DELETE FROM jobs WHERE id = ${job.id}`))
    await expectProblem(await waiting, 404, "job-not-found")
  })

  it("refuses a timeout it cannot read or over 60 s (422), and accepts the documented forms", async () => {
    const { job } = await enqueue({ kind: "noop", payload: {}, queue: "parked" })
    for (const bad of ["abc", "61s", "60001ms", "-1", "1e3", "30 s", "1.23456", "", "9999999"]) {
      const problem = await expectProblem(
        await request(`/jobs/${job.id}/wait?timeout=${encodeURIComponent(bad)}`),
        422,
        "validation-failed"
      )
      expect(JSON.stringify(problem.errors)).toContain("timeout")
    }
    for (const good of ["0", "0.05", "50ms", "0.1s"]) {
      expect((await request(`/jobs/${job.id}/wait?timeout=${good}`)).status).toBe(202)
    }
    await expectProblem(
      await postJson("/jobs?wait=2m", { kind: "noop", payload: {} }),
      422,
      "validation-failed"
    )
  })

  it("lets a waiter go when its client goes away", async () => {
    const { job } = await enqueue({ kind: "noop", payload: {}, queue: "parked" })
    const client = new AbortController()
    const waiting = api.handler(
      new Request(`http://api.test/jobs/${job.id}/wait?timeout=30s`, { signal: client.signal })
    )
    await untilWaiters(1)
    client.abort()
    await untilWaiters(0)
    await waiting.catch(() => undefined)
  })
})

describe("shutdown", () => {
  it("ends every wait with 202 and the job as it stands when the API closes", async () => {
    const { handler, dispose } = makeWebHandler(
      apiLayer(kinds).pipe(
        Layer.provide(Database.layerUrl(api.db.url, { applicationName: "jobq-wait-closing" })),
        Layer.provide(ApiConfig.layer())
      )
    )
    const { job } = await enqueue({ kind: "noop", payload: {}, queue: "parked" })
    const waiting = handler(new Request(`http://api.test/jobs/${job.id}/wait?timeout=60s`))
    const metrics = async () =>
      readExposition(await (await handler(new Request("http://api.test/metrics"))).text()).value(
        "jobq_job_waiters"
      )
    await waitFor("the waiter", async () => ((await metrics()) === 1 ? true : undefined))
    const closing = performance.now()
    const closed = dispose()
    const response = await waiting
    expect(performance.now() - closing).toBeLessThan(5_000)
    expect(response.status).toBe(202)
    expect(await json(response)).toMatchObject({ id: job.id, status: "queued" })
    await closed
  })
})

describe("POST /jobs?wait=", () => {
  it("answers 201 with the finished job, or 202 with the job as it stands", async () => {
    const { response, job } = await enqueue({ kind: "noop", payload: {} }, "?wait=20s")
    expect(response.status).toBe(201)
    expect(job.status).toBe("succeeded")
    const pending = await enqueue({ kind: "noop", payload: {}, queue: "parked" }, "?wait=100ms")
    expect(pending.response.status).toBe(202)
    expect(pending.response.headers.get("idempotent-replayed")).toBeNull()
    expect(pending.job.status).toBe("queued")
    expect(await waiters()).toBe(0)
  })

  it("replays an idempotent enqueue with wait: 200 when finished, 202 when not, both marked replayed", async () => {
    const finished = { kind: "noop", payload: {}, idempotencyKey: `wait-${crypto.randomUUID()}` }
    const first = await enqueue(finished, "?wait=20s")
    expect(first.response.status).toBe(201)
    const again = await enqueue(finished, "?wait=20s")
    expect(again.response.status).toBe(200)
    expect(again.response.headers.get("idempotent-replayed")).toBe("true")
    expect(again.job).toMatchObject({ id: first.job.id, status: "succeeded" })

    const parked = {
      kind: "noop",
      payload: {},
      queue: "parked",
      idempotencyKey: `wait-${crypto.randomUUID()}`
    }
    const created = await enqueue(parked)
    const replay = await enqueue(parked, "?wait=50ms")
    expect(replay.response.status).toBe(202)
    expect(replay.response.headers.get("idempotent-replayed")).toBe("true")
    expect(replay.job).toMatchObject({ id: created.job.id, status: "queued" })
  })

  it("a unique duplicate with wait is no idempotent replay: 202 without the replayed header", async () => {
    const unique = { by: ["kind", "queue", "payload"] }
    const parked = { kind: "sleep", payload: { ms: 1 }, queue: "parked", unique }
    const first = await enqueue(parked)
    const duplicate = await enqueue(parked, "?wait=50ms")
    expect(duplicate.response.status).toBe(202)
    expect(duplicate.response.headers.get("idempotent-replayed")).toBeNull()
    expect(duplicate.job).toMatchObject({ id: first.job.id, status: "queued" })
  })
})
