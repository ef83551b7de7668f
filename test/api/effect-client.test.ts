import { describe, expect, it } from "bun:test"
import { Effect } from "effect"
import { FetchHttpClient, HttpClient, HttpClientRequest } from "effect/http"
import { HttpApiClient, HttpApiSchema } from "effect/http-api"
import { JobId } from "../../src/domain/Job.ts"
import { makeApi } from "../../src/http/Api.ts"
import { demoKinds } from "../../src/kinds/DemoKinds.ts"
import { serve, setupApiTests } from "../support/api.ts"

const token = "effect-client-token"
const { handler } = await setupApiTests(import.meta.file, { tokens: [token] })
const baseUrl = serve(handler)
const api = makeApi(demoKinds)

const makeClient = (bearer: string = token) =>
  HttpApiClient.make(api, {
    baseUrl,
    transformClient: HttpClient.mapRequest(HttpClientRequest.bearerToken(bearer))
  })

const run = <A, E>(effect: Effect.Effect<A, E, HttpClient.HttpClient>) =>
  Effect.runPromise(Effect.provide(effect, FetchHttpClient.layer))

const isReplay = (value: object) => HttpApiSchema.WithHeadersValueTypeId in value

describe("Effect's HttpApiClient derived from the contract", () => {
  it("creates, replays, reads, lists and cancels a job", async () => {
    const key = `effect-${crypto.randomUUID()}`
    const result = await run(
      Effect.gen(function* () {
        const client = yield* makeClient()
        const created = yield* client.jobs.create({
          query: {},
          headers: { "idempotency-key": key },
          payload: { kind: "sleep", payload: { ms: 5 }, queue: "effect-client" }
        })
        const replayed = yield* client.jobs.create({
          query: {},
          headers: { "idempotency-key": key },
          payload: { kind: "sleep", payload: { ms: 5 }, queue: "effect-client" }
        })
        const job = "body" in created ? created.body : created
        const read = yield* client.jobs.get({ params: { id: job.id } })
        const page = yield* client.jobs.list({ query: { queue: "effect-client" } })
        const cancelled = yield* client.jobs.cancel({ params: { id: job.id } })
        return { created, replayed, job, read, page, cancelled }
      })
    )
    expect(isReplay(result.created)).toBe(false)
    expect(isReplay(result.replayed)).toBe(true)
    if (!("body" in result.replayed)) throw new Error("expected a replay")
    expect(result.replayed.body.id).toBe(result.job.id)
    expect(result.replayed.headers["idempotent-replayed"]).toBe("true")
    expect(result.read.runAt).toBeInstanceOf(Date)
    expect(result.read.id).toBe(result.job.id)
    expect(result.page.jobs.map((j) => j.id)).toEqual([result.job.id])
    expect(result.cancelled.outcome).toBe("cancelled")
  })

  it("decodes problems into typed errors", async () => {
    const missing = await run(
      Effect.flatMap(makeClient(), (client) =>
        Effect.flip(client.jobs.get({ params: { id: JobId.make(crypto.randomUUID()) } }))
      )
    )
    expect(missing._tag).toBe("JobNotFound")
    const key = `effect-${crypto.randomUUID()}`
    const conflict = await run(
      Effect.gen(function* () {
        const client = yield* makeClient()
        yield* client.jobs.create({
          query: {},
          headers: { "idempotency-key": key },
          payload: { kind: "noop", payload: {} }
        })
        return yield* Effect.flip(
          client.jobs.create({
            query: {},
            headers: { "idempotency-key": key },
            payload: { kind: "noop", payload: {}, priority: 9 }
          })
        )
      })
    )
    expect(conflict._tag).toBe("IdempotencyConflict")
    const unauthorized = await run(
      Effect.flatMap(makeClient("not-the-token"), (client) => Effect.flip(client.jobs.list({ query: {} })))
    )
    expect(unauthorized._tag).toBe("Unauthorized")
  })

  it("reads /health and /metrics", async () => {
    const [health, metrics] = await run(
      Effect.flatMap(makeClient(), (client) => Effect.all([client.health(), client.metrics()]))
    )
    expect(health).toEqual({ status: "ok", database: "up" })
    expect(metrics).toContain("jobq_http_requests_total")
  })
})
