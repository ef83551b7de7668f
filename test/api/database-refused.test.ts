/**
 * A server that refuses the API's sessions, whatever it says while refusing (55000 "not accepting
 * connections", 3D000 "does not exist"), is a database the client should retry later: 503 + Retry-After on
 * every job endpoint, never 500. What needs no database still answers.
 */
import { afterAll, describe, expect, it } from "bun:test"
import { SQL } from "bun"
import { apiApplicationName, expectProblem, jobEndpointRequests, webHandler } from "../support/api.ts"
import { freshDatabase, testServerUrl, withDatabase } from "../support/database.ts"

const db = await freshDatabase(import.meta.file)
const server = new SQL({ url: await testServerUrl(), max: 1 })
afterAll(async () => {
  await server.unsafe(`ALTER DATABASE "${db.name}" ALLOW_CONNECTIONS true`)
  await server.close()
  await db.drop()
})

const expectEveryEndpointUnavailable = async (
  handler: (request: Request) => Promise<Response>,
  id?: string
) => {
  for (const request of jobEndpointRequests(id)) {
    const label = `${request.method} ${new URL(request.url).pathname}`
    const response = await handler(request)
    expect({ label, status: response.status }).toEqual({ label, status: 503 })
    await expectProblem(response, 503, "database-unavailable")
    expect(Number(response.headers.get("retry-after"))).toBeGreaterThan(0)
  }
  const metrics = await handler(new Request("http://api.test/metrics"))
  expect(metrics.status).toBe(200)
  await metrics.text()
}

describe("the server refuses the API's sessions", () => {
  it("ALLOW_CONNECTIONS false (55000 at connect): every job endpoint answers 503 + Retry-After", async () => {
    const handler = webHandler(db.url)
    const created = await handler(
      new Request("http://api.test/jobs", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ kind: "noop", payload: {} })
      })
    )
    expect(created.status).toBe(201)
    const { id } = (await created.json()) as { id: string }
    await server.unsafe(`ALTER DATABASE "${db.name}" ALLOW_CONNECTIONS false`)
    // the sessions the pool holds go too: every statement now needs a new one
    await server`
      SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE datname = ${db.name} AND application_name = ${apiApplicationName}`
    await expectEveryEndpointUnavailable(handler, id)
    const health = await handler(new Request("http://api.test/health"))
    expect(health.status).toBe(503)
    expect((await health.json()).detail).toContain("did not answer")
  })

  it("a database that does not exist (3D000 at connect): every job endpoint answers 503 + Retry-After", async () => {
    const missing = withDatabase(await testServerUrl(), `jobq_missing_${crypto.randomUUID().slice(0, 8)}`)
    await expectEveryEndpointUnavailable(webHandler(missing))
  })
})
