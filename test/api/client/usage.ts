/**
 * Drives the API with openapi-fetch over the types openapi-typescript generated from docs/openapi.json
 * (`schema.ts`, regenerated and compared by test/api/openapi.test.ts). The `@ts-expect-error` lines are part
 * of the test: the typecheck fails if the generated client stops being typed per job kind.
 */
import createClient from "openapi-fetch"
import type { components, paths } from "./schema.ts"

type NewJob = components["schemas"]["NewJob"]

const sleep: NewJob = { kind: "sleep", payload: { ms: 5 } }
const hash: NewJob = { kind: "cpu_hash", payload: { seed: "abc", rounds: 2 }, priority: 1 }
// @ts-expect-error a sleep job's payload needs `ms` as a number
const wrongPayload: NewJob = { kind: "sleep", payload: { ms: "5" } }
// @ts-expect-error cpu_hash needs both `seed` and `rounds`
const missingField: NewJob = { kind: "cpu_hash", payload: { seed: "abc" } }
// @ts-expect-error there is no such kind
const unknownKind: NewJob = { kind: "nope", payload: {} }
void [wrongPayload, missingField, unknownKind]

export const exercise = async (baseUrl: string, token?: string) => {
  const client = createClient<paths>({
    baseUrl,
    ...(token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } })
  })
  const created = await client.POST("/jobs", {
    body: sleep,
    params: { header: { "idempotency-key": `typed-${crypto.randomUUID()}` } }
  })
  if (created.data === undefined) throw new Error(`create failed: ${created.response.status}`)
  const id: string = created.data.id
  const fetched = await client.GET("/jobs/{id}", { params: { path: { id } } })
  const batch = await client.POST("/jobs/batch", { body: { jobs: [hash, { kind: "noop", payload: {} }] } })
  const page = await client.GET("/jobs", { params: { query: { kind: "sleep", limit: "10" } } })
  const cancelled = await client.POST("/jobs/{id}/cancel", { params: { path: { id } } })
  // waiting: a terminal job answers at once (200); one no worker takes answers at the timeout (202)
  const waited = await client.GET("/jobs/{id}/wait", { params: { path: { id }, query: { timeout: "5s" } } })
  const queuedId = batch.data?.jobs[1]?.id ?? crypto.randomUUID()
  const timedOut = await client.GET("/jobs/{id}/wait", {
    params: { path: { id: queuedId }, query: { timeout: "200ms" } }
  })
  const missing = await client.GET("/jobs/{id}", { params: { path: { id: crypto.randomUUID() } } })
  const invalid = await client.POST("/jobs", {
    body: { kind: "sleep", payload: { ms: -1 } }
  })
  return {
    created: { status: created.response.status, job: created.data },
    fetched: { status: fetched.response.status, kind: fetched.data?.kind },
    batch: { status: batch.response.status, statuses: batch.data?.jobs.map((e) => e.status) },
    page: { status: page.response.status, ids: page.data?.jobs.map((j) => j.id) ?? [] },
    cancelled: { status: cancelled.response.status, outcome: cancelled.data?.outcome },
    waited: { status: waited.response.status, jobStatus: waited.data?.status },
    timedOut: { status: timedOut.response.status, jobStatus: timedOut.data?.status },
    missing: { status: missing.response.status, type: missing.error?.type },
    invalid: {
      status: invalid.response.status,
      // problems are typed, told apart by `type`
      paths:
        invalid.error?.type === "urn:jobq:problem:validation-failed"
          ? invalid.error.errors.map((e) => e.path.join("."))
          : undefined
    }
  }
}
