/**
 * Bulk operations (`/bulk-operations`): an action over every job a filter matches, run by the API on the
 * server in batches with its progress in a row, whoever watches; taken over from a process that stopped;
 * cancelled before its next batch; bounded in number; read-only tokens cannot start or cancel one.
 */
import { describe, expect, it } from "bun:test"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { maxRunningOperations } from "../../src/queue/BulkOperations.ts"
import { expectProblem, json, setupApiTests } from "../support/api.ts"

const api = await setupApiTests(import.meta.file, { tokens: ["full-token"], readTokens: ["read-token"] })
const full = { authorization: "Bearer full-token" }
const read = { authorization: "Bearer read-token" }

interface Operation {
  readonly id: string
  readonly status: string
  readonly matched: number
  readonly acted: number
  readonly skipped: number
  readonly batches: number
  readonly filter: Record<string, unknown>
}

const sql = <A extends object>(run: (sql: SqlClient.SqlClient) => Effect.Effect<ReadonlyArray<A>, unknown>) =>
  api.run(Effect.flatMap(SqlClient.SqlClient, run))

/** `count` queued jobs in `queue`, written directly (no worker runs in this file). */
const queued = (queue: string, count: number) =>
  sql(
    (q) => q`
      INSERT INTO jobs (queue, kind, payload)
      SELECT ${queue}, 'noop', '{}'::jsonb FROM generate_series(1, ${count})`
  )
const statuses = async (queue: string) =>
  Object.fromEntries(
    (
      await sql<{ status: string; n: number }>(
        (q) => q`SELECT status, count(*)::integer AS n FROM jobs WHERE queue = ${queue} GROUP BY status`
      )
    ).map((r) => [r.status, r.n])
  )
const get = async (id: string) => {
  const response = await api.request(`/bulk-operations/${id}`, { headers: read })
  expect(response.status).toBe(200)
  return (await json(response)) as Operation
}
const until = async (id: string, done: (op: Operation) => boolean, timeoutMs = 20_000) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const op = await get(id)
    if (done(op)) return op
    if (Date.now() > deadline) throw new Error(`not reached in ${timeoutMs} ms: ${JSON.stringify(op)}`)
    await Bun.sleep(50)
  }
}
/** A running operation written directly, owned by `owner` with a heartbeat `ageSeconds` old. */
const runningRow = async (owner: string, ageSeconds: number, queue: string) => {
  const id = crypto.randomUUID()
  await sql(
    (q) => q`
      INSERT INTO bulk_operations (id, action, filter, owner, heartbeat_at)
      VALUES (${id}, 'cancel', ${JSON.stringify({ queue })}::jsonb, ${owner},
              now() - ${ageSeconds} * interval '1 second')`
  )
  return id
}

describe("POST /bulk-operations", () => {
  it("answers 202 at once and runs on the server in batches to the end, its progress readable by anyone", async () => {
    await queued("bo-cancel", 1200)
    await queued("bo-other", 3)
    const started = await api.postJson(
      "/bulk-operations",
      { action: "cancel", filter: { queue: "bo-cancel", status: "queued" } },
      full
    )
    expect(started.status).toBe(202)
    const op = (await json(started)) as Operation
    expect(op.status).toBe("running")
    expect(op.filter).toEqual({ queue: "bo-cancel", status: "queued" })
    // the client asks nothing more of it: the server goes on alone
    const done = await until(op.id, (o) => o.status !== "running")
    expect({ ...done, id: undefined, filter: undefined }).toMatchObject({
      status: "succeeded",
      matched: 1200,
      acted: 1200,
      skipped: 0,
      batches: 3
    })
    expect(await statuses("bo-cancel")).toEqual({ cancelled: 1200 })
    expect(await statuses("bo-other")).toEqual({ queued: 3 })
    const listed = (await json(await api.request("/bulk-operations", { headers: read }))) as {
      operations: Array<Operation>
    }
    expect(listed.operations[0]?.id).toBe(op.id)
  })

  it("a read-only token reads operations but cannot start or cancel one (403); an unknown id is a 404; a bad filter a 422", async () => {
    const refused = await api.postJson("/bulk-operations", { action: "delete", filter: {} }, read)
    expect(refused.status).toBe(403)
    const id = await runningRow("someone-alive", 0, "bo-ro")
    expect(
      (await api.request(`/bulk-operations/${id}/cancel`, { method: "POST", headers: read })).status
    ).toBe(403)
    expect((await get(id)).status).toBe("running")
    await expectProblem(
      await api.request(`/bulk-operations/${crypto.randomUUID()}`, { headers: full }),
      404,
      "bulk-operation-not-found"
    )
    await expectProblem(
      await api.request("/bulk-operations/not-an-id", { headers: full }),
      404,
      "bulk-operation-not-found"
    )
    // an id longer than the router takes (128 characters) names no operation either
    await expectProblem(
      await api.request(`/bulk-operations/${"A".repeat(300)}`, { headers: full }),
      404,
      "bulk-operation-not-found"
    )
    const invalid = await api.postJson("/bulk-operations", { action: "purge", filter: {} }, full)
    expect(invalid.status).toBe(422)
    await api.request(`/bulk-operations/${id}/cancel`, { method: "POST", headers: full })
  })

  it("cancel stops a running operation before its next batch; an ended one is answered as it is", async () => {
    // owned by a live process that has not run a batch yet (its heartbeat is fresh)
    const id = await runningRow("someone-alive", 0, "bo-stop")
    const cancelled = await api.request(`/bulk-operations/${id}/cancel`, { method: "POST", headers: full })
    expect(cancelled.status).toBe(200)
    const op = (await json(cancelled)) as Operation
    expect({ status: op.status, batches: op.batches }).toEqual({ status: "cancelled", batches: 0 })
    const again = await api.request(`/bulk-operations/${id}/cancel`, { method: "POST", headers: full })
    expect(((await json(again)) as Operation).status).toBe("cancelled")
  })

  it("takes over an operation whose process stopped beating, from its recorded cursor, and finishes it", async () => {
    await queued("bo-orphan", 700)
    const id = await runningRow("a-process-that-died", 3600, "bo-orphan")
    const done = await until(id, (o) => o.status !== "running", 30_000)
    expect({ status: done.status, matched: done.matched, acted: done.acted }).toEqual({
      status: "succeeded",
      matched: 700,
      acted: 700
    })
    expect(await statuses("bo-orphan")).toEqual({ cancelled: 700 })
    const [row] = await sql<{ owner: string }>((q) => q`SELECT owner FROM bulk_operations WHERE id = ${id}`)
    expect(row?.owner).not.toBe("a-process-that-died")
  })

  it(`refuses a new operation while ${maxRunningOperations} run (409), across processes`, async () => {
    // from none running (another test's leftovers would count)
    await sql(
      (q) => q`UPDATE bulk_operations SET status = 'cancelled', finished_at = now() WHERE status = 'running'`
    )
    const ids: Array<string> = []
    for (let i = 0; i < maxRunningOperations; i++)
      ids.push(await runningRow("someone-alive", 0, `bo-bound-${i}`))
    await expectProblem(
      await api.postJson("/bulk-operations", { action: "cancel", filter: { queue: "bo-bound" } }, full),
      409,
      "too-many-bulk-operations"
    )
    await api.request(`/bulk-operations/${ids[0]}/cancel`, { method: "POST", headers: full })
    const accepted = await api.postJson(
      "/bulk-operations",
      { action: "cancel", filter: { queue: "bo-bound" } },
      full
    )
    expect(accepted.status).toBe(202)
    for (const id of ids)
      await api.request(`/bulk-operations/${id}/cancel`, { method: "POST", headers: full })
  })
})
