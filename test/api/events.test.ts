/**
 * `GET /events`: job events as Server-Sent Events. Transitions are made from SQL (as a worker's statements
 * make them), so each test knows which events must arrive and in what order.
 */
import { describe, expect, it } from "bun:test"
import { Duration, Effect } from "effect"
import { SqlClient } from "effect/sql"
import { Queue } from "../../src/queue/Queue.ts"
import { disposableWebHandler, setupApiTests, webHandler } from "../support/api.ts"
import { readExposition } from "../support/prometheus.ts"
import { waitFor } from "../support/runtime.ts"
import { eventData, type SseMessage, sseReader } from "../support/sse.ts"

const { run, request, handler: api, db } = await setupApiTests(import.meta.file)

const enqueue = (queue: string, kind = "noop") =>
  run(Queue.use((q) => q.enqueue({ kind, payload: kind === "sleep" ? { ms: 1 } : {}, queue }))).then(
    (e) => e.job.id as string
  )

const sqlRun = (f: (sql: SqlClient.SqlClient) => Effect.Effect<unknown, unknown>) =>
  run(Effect.flatMap(SqlClient.SqlClient, f) as Effect.Effect<unknown, never>)

const start = (id: string) =>
  sqlRun(
    (sql) => sql`UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = 'test',
                 lease_expires_at = now() + interval '1 minute', started_at = now() WHERE id = ${id}`
  )
const succeed = (id: string) =>
  sqlRun(
    (sql) => sql`UPDATE jobs SET status = 'succeeded', finished_at = now(), lease_owner = NULL,
                 lease_expires_at = NULL WHERE id = ${id}`
  )

/** Opens a stream and waits for its `: open` comment (subscribed from then on). */
const follow = async (
  query = "",
  headers: Record<string, string> = {},
  handler: (r: Request) => Promise<Response> = api
) => {
  const response = await handler(new Request(`http://api.test/events${query}`, { headers }))
  expect(response.status).toBe(200)
  expect(response.headers.get("content-type")).toStartWith("text/event-stream")
  const reader = sseReader(response)
  const first = await reader.next()
  expect(first?.comments[0]).toStartWith("open ")
  return reader
}

const summary = (m: SseMessage) => {
  const data = eventData(m)
  return `${m.event} ${data.job ?? ""}`.trim()
}

describe("GET /events", () => {
  it("sends each job's events in order, filtered by queue, type, kind and job", async () => {
    const all = await follow("?queue=ev-a")
    const succeeded = await follow("?type=succeeded&queue=ev-a,ev-b")
    const a = await enqueue("ev-a")
    const b = await enqueue("ev-b")
    const byJob = await follow(`?job=${b.toUpperCase()}`)
    const byKind = await follow("?kind=sleep&queue=ev-a")
    const c = await enqueue("ev-a", "sleep")
    await start(a)
    await start(b)
    await succeed(a)
    await succeed(b)
    const seen = (await all.events(4)).map(summary)
    expect(seen).toEqual([`enqueued ${a}`, `enqueued ${c}`, `started ${a}`, `succeeded ${a}`])
    expect((await succeeded.events(2)).map(summary)).toEqual([`succeeded ${a}`, `succeeded ${b}`])
    expect((await byJob.events(2)).map(summary)).toEqual([`started ${b}`, `succeeded ${b}`])
    expect((await byKind.events(1)).map(summary)).toEqual([`enqueued ${c}`])
    for (const r of [all, succeeded, byJob, byKind]) await r.cancel()
  })

  it("names the job, queue, kind, attempt and time in each event, with its id", async () => {
    const stream = await follow("?queue=ev-fields")
    const id = await enqueue("ev-fields", "sleep")
    await start(id)
    const [enqueued, started] = await stream.events(2)
    const data = eventData(started!)
    expect(data).toMatchObject({ type: "started", job: id, queue: "ev-fields", kind: "sleep", attempt: 1 })
    expect(data.id).toBe(started!.id)
    expect(Date.parse(data.at)).toBeGreaterThan(0)
    expect(enqueued!.id).not.toBe(started!.id)
    await stream.cancel()
  })

  it("replays what a client missed while disconnected, in order and once, after Last-Event-ID", async () => {
    const first = await follow("?queue=ev-replay")
    const x = await enqueue("ev-replay")
    const [seen] = await first.events(1)
    expect(summary(seen!)).toBe(`enqueued ${x}`)
    await first.cancel()
    // while nobody follows
    await start(x)
    await succeed(x)
    const y = await enqueue("ev-replay")
    const again = await follow("?queue=ev-replay", { "last-event-id": seen!.id! })
    expect((await again.events(3)).map(summary)).toEqual([`started ${x}`, `succeeded ${x}`, `enqueued ${y}`])
    // then live, with nothing repeated
    await start(y)
    expect((await again.events(1)).map(summary)).toEqual([`started ${y}`])
    await again.cancel()
    // the query parameter does the same for clients that cannot set the header
    const viaQuery = await follow(`?queue=ev-replay&lastEventId=${seen!.id}`)
    expect((await viaQuery.events(4)).map(summary)).toEqual([
      `started ${x}`,
      `succeeded ${x}`,
      `enqueued ${y}`,
      `started ${y}`
    ])
    await viaQuery.cancel()
  })

  it("sends reset for an id outside the window, a malformed one, or one before a gap, then goes on live", async () => {
    // past the log's end (no such transaction yet: replayed from, it held back every event), and parts
    // beyond a bigint (a 200 with an empty stream, the replay's query failing)
    for (const stale of [
      "1-1",
      "not-an-id",
      "999999999-0",
      "9999999999999999999-0",
      "1-9999999999999999999"
    ]) {
      const stream = await follow("?queue=ev-reset", { "last-event-id": stale })
      const reset = await stream.nextEvent()
      expect(reset?.event).toBe("reset")
      expect(typeof eventData(reset!).reason).toBe("string")
      const z = await enqueue("ev-reset")
      expect((await stream.events(1)).map(summary)).toEqual([`enqueued ${z}`])
      await stream.cancel()
    }
    // a gap: the gate was closed and opened again after the client's last event (marked by a reset row)
    const before = await follow("?queue=ev-gap")
    await enqueue("ev-gap")
    const [last] = await before.events(1)
    await before.cancel()
    await sqlRun((sql) => sql`INSERT INTO event_log (type) VALUES ('reset')`)
    const after = await follow("?queue=ev-gap", { "last-event-id": last!.id! })
    expect((await after.nextEvent())?.event).toBe("reset")
    await after.cancel()
  })

  it("refuses a bad filter with 422", async () => {
    for (const query of ["?type=exploded", "?job=nope", `?queue=${"q,".repeat(30)}q`]) {
      const response = await request(`/events${query}`)
      expect(response.status).toBe(422)
    }
  })

  it("needs a token like every other endpoint (401 without one)", async () => {
    const guarded = webHandler(db.url, { tokens: ["s3cret"] })
    expect((await guarded(new Request("http://api.test/events"))).status).toBe(401)
    const response = await guarded(
      new Request("http://api.test/events", { headers: { authorization: "Bearer s3cret" } })
    )
    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toStartWith("text/event-stream")
    await response.body!.cancel()
  })

  it("sends `: ping` comments at EVENTS_HEARTBEAT and ends after EVENTS_MAX_LIFETIME", async () => {
    const handler = webHandler(db.url, {
      events: { heartbeat: Duration.millis(100), maxLifetime: Duration.millis(1500) }
    })
    const stream = await follow("?queue=ev-quiet", {}, handler)
    const ping = await stream.next(5_000)
    expect(ping?.comments).toEqual(["ping"])
    const started = performance.now()
    for (;;) {
      const message = await stream.next(10_000)
      if (message === undefined) break
      expect(message.comments).toEqual(["ping"])
    }
    expect(performance.now() - started).toBeLessThan(5_000)
  })

  it("ends every stream when the API shuts down", async () => {
    const { handler, dispose } = disposableWebHandler(db.url)
    const stream = await follow("?queue=ev-shutdown", {}, handler)
    const started = performance.now()
    await dispose()
    expect(await stream.nextEvent(5_000)).toBeUndefined()
    expect(performance.now() - started).toBeLessThan(5_000)
  })

  it("drops a client that reads too slowly with a reset instead of buffering for it", async () => {
    const handler = webHandler(db.url, { events: { subscriberBuffer: 20 } })
    const followers = async () =>
      readExposition(await (await handler(new Request("http://api.test/metrics"))).text()).value(
        "jobq_event_followers"
      )
    const stream = await follow("?queue=ev-slow", {}, handler)
    await waitFor("the client to join the live feed", async () =>
      (await followers()) === 1 ? true : undefined
    )
    // the client reads nothing while 500 events happen
    await run(
      Queue.use((q) =>
        q.enqueueMany(Array.from({ length: 500 }, () => ({ kind: "noop", payload: {}, queue: "ev-slow" })))
      )
    )
    await waitFor("the slow client to be dropped", async () => ((await followers()) === 0 ? true : undefined))
    const received: Array<SseMessage> = []
    for (;;) {
      const message = await stream.nextEvent(5_000)
      if (message === undefined) break
      received.push(message)
    }
    expect(received.at(-1)?.event).toBe("reset")
    expect(received.length).toBeLessThan(500)
  })
})
