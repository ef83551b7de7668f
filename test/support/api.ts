/**
 * The HTTP API on a fresh test database, driven through the exported web handler (`request`) or, for
 * clients that need a socket, on a real port (`serve`). Everything is torn down after the file's tests.
 */
import { afterAll, expect } from "bun:test"
import { Duration, Layer, Redacted } from "effect"
import {
  ApiConfig,
  DatabaseConfig,
  type DatabaseDefaults,
  EventsConfig,
  PayloadConfig
} from "../../src/Config.ts"
import * as Database from "../../src/db/Database.ts"
import type { JobKind } from "../../src/domain/JobKind.ts"
import { apiLayer, makeWebHandler } from "../../src/http/handler.ts"
import { demoKinds } from "../../src/kinds/DemoKinds.ts"
import { setupQueueTests } from "./runtime.ts"

export interface ApiSettings {
  readonly tokens?: ReadonlyArray<string>
  /** API_READ_TOKENS */
  readonly readTokens?: ReadonlyArray<string>
  /** API_STATS_INTERVAL */
  readonly statsInterval?: Duration.Input
  readonly maxBodyBytes?: number
  readonly publicDocs?: boolean
  readonly kinds?: ReadonlyArray<JobKind>
  /** MAX_PAYLOAD_DEPTH; unset: the default, as when an application provides no `PayloadConfig`. */
  readonly maxPayloadDepth?: number
  /** The pool's settings over the API program's (`DatabaseConfig.apiDefaults`, 20 connections). */
  readonly database?: DatabaseDefaults & { readonly maxConnections?: number }
  /** API_DATABASE_ACQUIRE_TIMEOUT */
  readonly databaseAcquireTimeout?: Duration.Input
  /** EVENTS_*; unset: the defaults, as when an application provides no `EventsConfig`. */
  readonly events?: Partial<EventsConfig["Service"]>
}

/** The application_name of the test API's sessions (to find them in pg_stat_activity). */
export const apiApplicationName = "jobq-api-tests"

/** A web handler for the API on the database at `url`; disposed after the file's tests. */
export const webHandler = (url: string, settings: ApiSettings = {}) => {
  const { handler, dispose } = disposableWebHandler(url, settings)
  afterAll(dispose)
  return handler
}

/** A web handler for the API on the database at `url`, which the caller disposes (shutting the API down). */
export const disposableWebHandler = (url: string, settings: ApiSettings = {}) =>
  makeWebHandler(
    apiLayer(settings.kinds ?? demoKinds).pipe(
      Layer.provide(
        Database.layerUrl(url, {
          maxConnections: 20,
          applicationName: apiApplicationName,
          ...DatabaseConfig.apiDefaults,
          ...settings.database
        })
      ),
      Layer.provide(
        ApiConfig.layer({
          tokens: (settings.tokens ?? []).map((token) => Redacted.make(token)),
          readTokens: (settings.readTokens ?? []).map((token) => Redacted.make(token)),
          ...(settings.statsInterval === undefined
            ? {}
            : { statsInterval: Duration.fromInputUnsafe(settings.statsInterval) }),
          ...(settings.maxBodyBytes === undefined ? {} : { maxBodyBytes: settings.maxBodyBytes }),
          ...(settings.publicDocs === undefined ? {} : { publicDocs: settings.publicDocs }),
          ...(settings.databaseAcquireTimeout === undefined
            ? {}
            : { databaseAcquireTimeout: Duration.fromInputUnsafe(settings.databaseAcquireTimeout) })
        })
      ),
      settings.maxPayloadDepth === undefined
        ? (layer) => layer
        : Layer.provide(PayloadConfig.layer({ maxDepth: settings.maxPayloadDepth })),
      settings.events === undefined ? (layer) => layer : Layer.provide(EventsConfig.layer(settings.events))
    )
  )

/** A fresh database, the queue runtime on it (to arrange state) and the API over it. */
export const setupApiTests = async (file: string, settings: ApiSettings = {}) => {
  const queue = await setupQueueTests(file, settings.kinds ?? demoKinds)
  const handler = webHandler(queue.db.url, settings)
  const base = "http://api.test"
  const request = (path: string, init: RequestInit = {}) => handler(new Request(`${base}${path}`, init))
  const postJson = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    request(path, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body)
    })
  return { ...queue, handler, request, postJson }
}

/** The handler on a real port (127.0.0.1, picked by the OS), for clients that speak HTTP. */
export const serve = (handler: (request: Request) => Promise<Response>) => {
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: handler })
  afterAll(() => server.stop(true))
  return `http://127.0.0.1:${server.port}`
}

/** One request to each job endpoint, all of which need the database; `id` names the job for those that take one. */
export const jobEndpointRequests = (id: string = crypto.randomUUID()) => {
  const postJson = (path: string, body: unknown) =>
    new Request(`http://api.test${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body)
    })
  return [
    postJson("/jobs", { kind: "noop", payload: {} }),
    postJson("/jobs/batch", { jobs: [{ kind: "noop", payload: {} }] }),
    new Request(`http://api.test/jobs/${id}`),
    new Request("http://api.test/jobs"),
    new Request(`http://api.test/jobs/${id}/cancel`, { method: "POST" }),
    new Request(`http://api.test/jobs/${id}/retry`, { method: "POST" })
  ]
}

/** The response body as JSON, untyped (tests assert its shape). */
export const json = async (response: Response) => (await response.json()) as any

/** Asserts the documented problem-details shape of an error answer and returns its body. */
export const expectProblem = async (response: Response, status: number, type: string) => {
  expect(response.status).toBe(status)
  expect(response.headers.get("content-type")).toStartWith("application/problem+json")
  const body = await json(response)
  expect(body.type).toBe(`urn:jobq:problem:${type}`)
  expect(body.status).toBe(status)
  expect(typeof body.title).toBe("string")
  expect(typeof body.detail).toBe("string")
  return body
}
