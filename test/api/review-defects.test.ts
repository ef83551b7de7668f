/**
 * Defects a review of cron schedules, flows and the dashboard's server side found, one regression test each:
 * bad input answered with a 4xx (never a 500), and flow jobs that an operator's action must not strand.
 */
import { describe, expect, it } from "bun:test"
import { SQL } from "bun"
import { apiApplicationName, expectProblem, json, setupApiTests } from "../support/api.ts"
import { waitFor } from "../support/runtime.ts"

const { request, postJson, db } = await setupApiTests(import.meta.file)

describe("text Postgres cannot store is a 422, not a 500", () => {
  it("a pause reason or pauser with NUL or a lone surrogate (queues and schedules)", async () => {
    expect(
      (await postJson("/schedules", { name: "nul-pause", kind: "noop", cron: "* * * * *" })).status
    ).toBe(200)
    for (const path of ["/queues/nul-pause/pause", "/schedules/nul-pause/pause"]) {
      for (const body of [{ reason: "a\u0000b" }, { by: "a\u0000" }, { reason: "a\ud800" }]) {
        const problem = await expectProblem(await postJson(path, body), 422, "validation-failed")
        expect(problem.errors[0].path).toEqual(["body", Object.keys(body)[0]])
      }
    }
    // nothing was paused
    expect((await json(await request("/queues/nul-pause"))).paused ?? false).toBe(false)
    expect((await json(await request("/schedules/nul-pause"))).paused).toBe(false)
  })

  it("a payload filter with the escape of a NUL or a lone surrogate (GET /jobs, POST /jobs/bulk)", async () => {
    for (const filter of ['{"a":"\\u0000"}', '{"a\\u0000":1}', '{"a":{"b":"\\ud800"}}']) {
      const listed = await expectProblem(
        await request(`/jobs?payload=${encodeURIComponent(filter)}`),
        422,
        "validation-failed"
      )
      expect(listed.errors[0].path).toEqual(["query", "payload"])
      const bulk = await expectProblem(
        await postJson("/jobs/bulk", { action: "cancel", filter: { payload: filter } }),
        422,
        "validation-failed"
      )
      expect(bulk.errors[0].path).toEqual(["body", "filter", "payload"])
    }
  })
})

describe("bulk actions on flow jobs", () => {
  const step = (queue: string, name: string, dependsOn?: Array<string>) => ({
    name,
    kind: "sleep",
    payload: { ms: 1 },
    queue,
    delayMs: 3_600_000,
    ...(dependsOn === undefined ? {} : { dependsOn })
  })
  const statuses = async (flowId: string) =>
    Object.fromEntries(
      (await json(await request(`/flows/${flowId}`))).jobs.map((j: any) => [j.name, j.status])
    )

  it("bulk retry of a flow's cancelled jobs: the parent queued, the dependent back to blocked (was a 500 for the batch)", async () => {
    const queue = "review-bulk-retry"
    const flow = await json(await postJson("/flows", { jobs: [step(queue, "a"), step(queue, "b", ["a"])] }))
    expect((await request(`/jobs/${flow.jobs[0].id}/cancel`, { method: "POST" })).status).toBe(200)
    expect(await statuses(flow.id)).toEqual({ a: "cancelled", b: "cancelled" })
    const response = await postJson("/jobs/bulk", { action: "retry", filter: { queue } })
    expect(response.status).toBe(200)
    const batch = await json(response)
    expect([batch.matched, batch.acted, batch.done]).toEqual([2, 2, true])
    expect(await statuses(flow.id)).toEqual({ a: "queued", b: "blocked" })
  })

  it("bulk retry skips the jobs of a cancelled flow, as POST /jobs/{id}/retry refuses them", async () => {
    const queue = "review-bulk-retry-cancelled-flow"
    const flow = await json(await postJson("/flows", { jobs: [step(queue, "a"), step(queue, "b", ["a"])] }))
    expect((await request(`/flows/${flow.id}/cancel`, { method: "POST" })).status).toBe(200)
    const batch = await json(await postJson("/jobs/bulk", { action: "retry", filter: { queue } }))
    expect([batch.matched, batch.acted]).toEqual([2, 0])
    expect(await statuses(flow.id)).toEqual({ a: "cancelled", b: "cancelled" })
  })

  it("bulk cancel cancels blocked jobs, as POST /jobs/{id}/cancel does (it skipped them)", async () => {
    const queue = "review-bulk-cancel-blocked"
    const flow = await json(
      await postJson("/flows", { jobs: [step(queue, "a"), step(queue, "b", ["a"]), step(queue, "c", ["b"])] })
    )
    const batch = await json(
      await postJson("/jobs/bulk", { action: "cancel", filter: { queue, status: "blocked" } })
    )
    expect([batch.matched, batch.acted]).toEqual([2, 2])
    expect(await statuses(flow.id)).toEqual({ a: "queued", b: "cancelled", c: "cancelled" })
  })
})

describe("deleting a flow job strands none of its dependents", () => {
  const step = (name: string, dependsOn?: Array<string>) => ({
    name,
    kind: "sleep",
    payload: { ms: 1 },
    queue: "review-flow-delete",
    delayMs: 3_600_000,
    ...(dependsOn === undefined ? {} : { dependsOn })
  })
  const read = async (flowId: string) => {
    const flow = await json(await request(`/flows/${flowId}`))
    return { flow, statuses: Object.fromEntries(flow.jobs.map((j: any) => [j.name, j.status])) }
  }

  it("DELETE /jobs/{id} of a queued parent cancels its blocked descendants, whatever the policy (they waited for ever)", async () => {
    for (const onFailure of ["cancel", "wait"]) {
      const created = await json(
        await postJson("/flows", {
          onFailure,
          jobs: [step("a"), step("b", ["a"]), step("c", ["b"]), step("d")]
        })
      )
      expect((await request(`/jobs/${created.jobs[0].id}`, { method: "DELETE" })).status).toBe(200)
      const { flow, statuses } = await read(created.id)
      expect(statuses).toEqual({ b: "cancelled", c: "cancelled", d: "queued" })
      expect(flow.jobs.find((j: any) => j.name === "b").lastError).toBe(
        `dependency "a" (job ${created.jobs[0].id}) was deleted`
      )
      // a retry would wait for the deleted job for ever: refused
      await expectProblem(
        await request(`/jobs/${created.jobs[1].id}/retry`, { method: "POST" }),
        409,
        "job-state-conflict"
      )
      expect((await read(created.id)).statuses.b).toBe("cancelled")
    }
  })

  it("DELETE of a blocked job, and a bulk delete of a parent, cancel the jobs waiting for them", async () => {
    const one = await json(
      await postJson("/flows", { jobs: [step("a"), step("b", ["a"]), step("c", ["b"])] })
    )
    expect((await request(`/jobs/${one.jobs[1].id}`, { method: "DELETE" })).status).toBe(200)
    expect((await read(one.id)).statuses).toEqual({ a: "queued", c: "cancelled" })

    const two = await json(
      await postJson("/flows", {
        onFailure: "wait",
        jobs: [step("a"), step("b", ["a"]), step("c", ["a", "b"])]
      })
    )
    const batch = await json(
      await postJson("/jobs/bulk", { action: "delete", filter: { ids: [two.jobs[0].id] } })
    )
    expect(batch.acted).toBe(1)
    const after = await read(two.id)
    expect(after.statuses).toEqual({ b: "cancelled", c: "cancelled" })
    expect(after.flow.status).toBe("failed")
  })
})

describe("PATCH /schedules/{name} against a concurrent change", () => {
  /** Runs `hold` in a transaction on its own connection, sends `patch` meanwhile, and commits once the PATCH waits for the row's lock. */
  const whileLocked = async (hold: (tx: SQL) => Promise<unknown>, patch: () => Promise<Response>) => {
    const pg = new SQL({ url: db.url, max: 1 })
    const tx = await pg.reserve()
    try {
      await tx`BEGIN`
      await hold(tx)
      const answer = patch()
      await waitFor("the PATCH to wait for the schedule's row lock", async () => {
        const [row] = await tx`
          SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE application_name = ${apiApplicationName} AND wait_event_type = 'Lock'`
        return row.n > 0 ? true : undefined
      })
      await tx`COMMIT`
      return await answer
    } finally {
      tx.release()
      await pg.close()
    }
  }
  const patch = (name: string, body: unknown) => () =>
    request(`/schedules/${name}`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body)
    })

  it("a schedule deleted meanwhile answers 404 and stays deleted (the PATCH re-created it)", async () => {
    expect(
      (await postJson("/schedules", { name: "patch-vs-delete", kind: "noop", cron: "0 3 * * *" })).status
    ).toBe(200)
    const answer = await whileLocked(
      (tx) => tx`DELETE FROM schedules WHERE name = 'patch-vs-delete'`,
      patch("patch-vs-delete", { cron: "0 4 * * *" })
    )
    await expectProblem(answer, 404, "schedule-not-found")
    await expectProblem(await request("/schedules/patch-vs-delete"), 404, "schedule-not-found")
  })

  it("a change made meanwhile is kept (the PATCH wrote back the fields it had read before)", async () => {
    expect(
      (await postJson("/schedules", { name: "patch-vs-patch", kind: "noop", cron: "0 3 * * *" })).status
    ).toBe(200)
    const answer = await whileLocked(
      (tx) => tx`UPDATE schedules SET expression = '0 5 * * *' WHERE name = 'patch-vs-patch'`,
      patch("patch-vs-patch", { priority: 7 })
    )
    expect(answer.status).toBe(200)
    const after = await json(await request("/schedules/patch-vs-patch"))
    expect([after.cron, after.priority]).toEqual(["0 5 * * *", 7])
  })
})

it("a schedule name in the path longer than the router takes is called a schedule name (it said queue)", async () => {
  const problem = await expectProblem(
    await request(`/schedules/${"s".repeat(300)}`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: "{}"
    }),
    422,
    "validation-failed"
  )
  expect(problem.errors).toEqual([
    { path: ["path", "name"], message: "a schedule name has at most 128 characters" }
  ])
  const queue = await expectProblem(await request(`/queues/${"q".repeat(300)}`), 422, "validation-failed")
  expect(queue.errors[0].message).toBe("a queue name has at most 128 characters")
})

it("bulk cancel by status=blocked while a job of its batch changes: the batch is not cut short, no blocked job is left", async () => {
  const queue = "review-bulk-cancel-race"
  const step = (name: string, dependsOn?: Array<string>) => ({
    name,
    kind: "sleep",
    payload: { ms: 1 },
    queue,
    delayMs: 3_600_000,
    ...(dependsOn === undefined ? {} : { dependsOn })
  })
  const flow = await json(
    await postJson("/flows", {
      onFailure: "wait",
      jobs: [step("a"), step("b1", ["a"]), step("b2", ["a"]), step("b3", ["a"]), step("b4", ["a"])]
    })
  )
  const pg = new SQL({ url: db.url, max: 2 })
  const tx = await pg.reserve()
  let batch: any
  try {
    await tx`BEGIN`
    // another cancel of b1, not committed yet: the bulk cancel waits for its row
    await tx`UPDATE jobs SET status = 'cancelled', finished_at = now() WHERE id = ${flow.jobs[1].id}`
    const answer = postJson("/jobs/bulk", {
      action: "cancel",
      filter: { queue, status: "blocked" },
      batchSize: 3
    })
    await waitFor("the bulk cancel to wait for b1's row lock", async () => {
      const [row] = await pg`
        SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE application_name = ${apiApplicationName} AND wait_event_type = 'Lock'`
      return row.n > 0 ? true : undefined
    })
    await tx`COMMIT`
    batch = await json(await answer)
  } finally {
    tx.release()
  }
  while (!batch.done) {
    batch = await json(
      await postJson("/jobs/bulk", {
        action: "cancel",
        filter: { queue, status: "blocked" },
        batchSize: 3,
        cursor: batch.nextCursor
      })
    )
  }
  await pg.close()
  const statuses = (await json(await request(`/flows/${flow.id}`))).jobs.map((j: any) => j.status)
  expect(statuses).toEqual(["queued", "cancelled", "cancelled", "cancelled", "cancelled"])
})
