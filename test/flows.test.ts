/**
 * Flows in one process: a diamond run by a worker, parents' results, failure and cancel propagation under
 * both policies, validation, JOB_RETENTION=0, and the unblocking statement under concurrent completions
 * (checked on the database's record).
 */
import { afterAll, describe, expect, it } from "bun:test"
import { Effect, Exit, Layer, ManagedRuntime, Schema } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../src/db/Database.ts"
import type { Flow, NewFlow } from "../src/domain/Flow.ts"
import { defineKind, PermanentError } from "../src/domain/JobKind.ts"
import { JobRepo } from "../src/queue/JobRepo.ts"
import * as QueueLayer from "../src/queue/layer.ts"
import { Queue } from "../src/queue/Queue.ts"
import { QueueRepo } from "../src/queue/QueueRepo.ts"
import * as Worker from "../src/worker/index.ts"
import { freshDatabase } from "./support/database.ts"
import { waitFor } from "./support/runtime.ts"

/** What each job saw when it ran: its local name (payload) and its parents' results. */
const runs: Array<{ name: string; parents: Readonly<Record<string, unknown>> }> = []
const step = defineKind({
  name: "step",
  payload: Schema.Struct({ name: Schema.String, fail: Schema.optionalKey(Schema.Boolean) }),
  handler: ({ name, fail }, { parents }) =>
    Effect.suspend(() => {
      runs.push({ name, parents })
      return fail === true
        ? Effect.fail(new PermanentError({ message: `${name} failed on purpose` }))
        : Effect.succeed({ from: name, sum: Object.keys(parents).length })
    }),
  maxAttempts: 1
})
/** Never claimed by the worker below (its queue is not served): for the statement-level tests. */
const kinds = [step]

const db = await freshDatabase(import.meta.file)
const database = Database.layerUrl(db.url, { applicationName: "jobq-flows-test", maxConnections: 12 })
const runtime = ManagedRuntime.make(
  Layer.mergeAll(
    Worker.layer({ kinds, settings: { concurrency: 4, queues: ["default"] } }),
    QueueLayer.layer(kinds)
  ).pipe(Layer.provideMerge(database))
)
afterAll(async () => {
  await runtime.dispose()
  await db.drop()
})

const run = <A, E>(effect: Effect.Effect<A, E, Queue | JobRepo | QueueRepo | SqlClient.SqlClient>) =>
  runtime.runPromise(effect)
const enqueueFlow = (flow: NewFlow) => run(Queue.use((q) => q.enqueueFlow(flow)))
const getFlow = (id: string) => run(Queue.use((q) => q.getFlow(id)))
const statuses = (flow: Flow) => Object.fromEntries(flow.jobs.map((job) => [job.name, job.status]))
const settled = (id: string) =>
  waitFor(`flow ${id} to settle`, async () => {
    const flow = await getFlow(id)
    return flow.status === "active" ? undefined : flow
  })
const job = (name: string, dependsOn: Array<string> = [], extra: Record<string, unknown> = {}) => ({
  name,
  kind: "step",
  payload: { name, ...extra },
  dependsOn
})

describe("a diamond flow", () => {
  it("runs a, then b and c, then d, which sees both results; blocked jobs are never claimed early", async () => {
    const flow = await enqueueFlow({
      jobs: [job("d", ["b", "c"]), job("b", ["a"]), job("c", ["a"]), job("a")]
    })
    expect(statuses(flow)).toEqual({ d: "blocked", b: "blocked", c: "blocked", a: "queued" })
    expect(
      flow.jobs
        .find((j) => j.name === "d")!
        .dependsOn.slice()
        .sort()
    ).toEqual(["b", "c"])
    const done = await settled(flow.id)
    expect(done.status).toBe("succeeded")
    const order = runs.filter((r) => ["a", "b", "c", "d"].includes(r.name)).map((r) => r.name)
    expect(order[0]).toBe("a")
    expect(order[3]).toBe("d")
    expect(order.length).toBe(4)
    const d = runs.find((r) => r.name === "d")!
    expect(d.parents).toEqual({ b: { from: "b", sum: 1 }, c: { from: "c", sum: 1 } })
    expect(runs.find((r) => r.name === "a")!.parents).toEqual({})
  })
})

describe("failure policies", () => {
  it("cancel (the default): a failed job's dependents end cancelled, transitively, naming it", async () => {
    const flow = await enqueueFlow({
      jobs: [job("a", [], { fail: true }), job("b", ["a"]), job("c", ["b"]), job("x")]
    })
    const done = await settled(flow.id)
    expect(statuses(done)).toEqual({ a: "failed_permanent", b: "cancelled", c: "cancelled", x: "succeeded" })
    expect(done.status).toBe("failed")
    const a = done.jobs.find((j) => j.name === "a")!
    for (const name of ["b", "c"]) {
      expect(done.jobs.find((j) => j.name === name)!.lastError).toBe(
        `dependency "a" (job ${a.id}) ended failed_permanent`
      )
    }
  })

  it("wait: dependents stay blocked; a retry of the failed job lets the flow go on", async () => {
    const flow = await enqueueFlow({
      onFailure: "wait",
      jobs: [job("a", [], { fail: true }), job("b", ["a"])]
    })
    const a = flow.jobs.find((j) => j.name === "a")!
    await waitFor("a to fail", async () =>
      statuses(await getFlow(flow.id)).a === "failed_permanent" ? true : undefined
    )
    expect(statuses(await getFlow(flow.id)).b).toBe("blocked")
    // the retry runs it again with the same payload: make it succeed this time
    await run(
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) => sql`UPDATE jobs SET payload = jsonb_build_object('name', 'a') WHERE id = ${a.id}`
      )
    )
    await run(Queue.use((q) => q.retry(a.id)))
    const done = await settled(flow.id)
    expect(statuses(done)).toEqual({ a: "succeeded", b: "succeeded" })
  })

  it("a retried dependent waits blocked for its retried dependency; the flow then ends succeeded", async () => {
    const flow = await enqueueFlow({ jobs: [job("a", [], { fail: true }), job("b", ["a"])] })
    const [a, b] = [flow.jobs[0]!, flow.jobs[1]!]
    await settled(flow.id)
    expect(statuses(await getFlow(flow.id))).toEqual({ a: "failed_permanent", b: "cancelled" })
    // (the retry runs a with the same payload: make it succeed this time)
    await run(
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) => sql`UPDATE jobs SET payload = jsonb_build_object('name', 'a') WHERE id = ${a.id}`
      )
    )
    // b first: its dependency has not succeeded, so it goes back to blocked, not to the queue
    expect((await run(Queue.use((q) => q.retry(b.id)))).status).toBe("blocked")
    await run(Queue.use((q) => q.retry(a.id)))
    expect(statuses(await settled(flow.id))).toEqual({ a: "succeeded", b: "succeeded" })
  })

  it("a cancelled dependency under `cancel` cancels its dependents; a blocked job can be cancelled alone", async () => {
    const flow = await enqueueFlow({
      jobs: [job("a", [], {}), job("b", ["a"]), job("c", ["b"])].map((j) => ({ ...j, delayMs: 3_600_000 }))
    })
    const b = flow.jobs.find((j) => j.name === "b")!
    const cancelled = await run(Queue.use((q) => q.cancel(b.id)))
    expect(cancelled.outcome).toBe("cancelled")
    const now = await getFlow(flow.id)
    expect(statuses(now)).toEqual({ a: "queued", b: "cancelled", c: "cancelled" })
    expect(now.jobs.find((j) => j.name === "c")!.lastError).toBe(
      `dependency "b" (job ${b.id}) ended cancelled`
    )
  })

  it("cancelling a flow cancels every unfinished job in it", async () => {
    const flow = await enqueueFlow({
      onFailure: "wait",
      jobs: [job("a"), job("b", ["a"]), job("c", ["a", "b"])].map((j) => ({ ...j, delayMs: 3_600_000 }))
    })
    const cancelled = await run(Queue.use((q) => q.cancelFlow(flow.id)))
    expect(cancelled.status).toBe("cancelled")
    expect(statuses(cancelled)).toEqual({ a: "cancelled", b: "cancelled", c: "cancelled" })
    // a job of a cancelled flow stays cancelled
    const retried = await runtime.runPromiseExit(Queue.use((q) => q.retry(cancelled.jobs[0]!.id)))
    expect(Exit.isFailure(retried) && JSON.stringify(retried.cause)).toContain("its flow was cancelled")
  })
})

describe("validation", () => {
  const refused = async (flow: NewFlow) => {
    const exit = await runtime.runPromiseExit(Queue.use((q) => q.enqueueFlow(flow)))
    if (Exit.isSuccess(exit)) throw new Error("the flow was accepted")
    const error = exit.cause.reasons.find((r) => r._tag === "Fail")
    return (error as unknown as { error: { _tag: string; job?: string; message: string } }).error
  }

  it("refuses a cycle, an unknown name, a duplicate name and too many jobs, naming the job; inserts nothing", async () => {
    const before = await run(
      Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ n: number }>`SELECT count(*)::int AS n FROM jobs`)
    )
    const cycle = await refused({ jobs: [job("a", ["c"]), job("b", ["a"]), job("c", ["b"]), job("d")] })
    expect(cycle).toMatchObject({ _tag: "InvalidFlow" })
    expect(cycle.message).toMatch(/depends on itself: (a|b|c) -> (a|b|c) -> (a|b|c) -> (a|b|c)/)
    expect(await refused({ jobs: [job("a", ["a"])] })).toMatchObject({
      job: "a",
      message: 'job "a" depends on itself: a -> a'
    })
    expect(await refused({ jobs: [job("a"), job("b", ["zz"])] })).toMatchObject({
      job: "b",
      message: 'job "b" depends on "zz", which is no job of this flow'
    })
    expect(await refused({ jobs: [job("a"), job("a")] })).toMatchObject({ job: "a" })
    const many = Array.from({ length: 1001 }, (_, i) => job(`j${i}`))
    expect(await refused({ jobs: many })).toMatchObject({
      job: "j1000",
      message: 'job "j1000" is one too many: a flow holds at most 1000 jobs'
    })
    expect(await refused({ jobs: [job("a"), { name: "b", kind: "nope", payload: {} }] })).toMatchObject({
      job: "b"
    })
    const after = await run(
      Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ n: number }>`SELECT count(*)::int AS n FROM jobs`)
    )
    expect(after).toEqual(before)
  })
})

describe("the library", () => {
  it("enqueueFlow joins the caller's transaction: rolled back with it, nothing stays", async () => {
    const exit = await runtime.runPromiseExit(
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql.withTransaction(
          Effect.andThen(
            Queue.use((q) => q.enqueueFlow({ jobs: [{ ...job("t1"), queue: "rolled-back" }] })),
            Effect.fail("the caller changed its mind")
          )
        )
      )
    )
    expect(Exit.isFailure(exit)).toBe(true)
    const [row] = await run(
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) => sql<{ n: number }>`SELECT count(*)::int AS n FROM jobs WHERE queue = 'rolled-back'`
      )
    )
    expect(row!.n).toBe(0)
  })
})

describe("the unblocking statement", () => {
  it("two parents completed in concurrent transactions queue their common dependent exactly once", async () => {
    // parents on a queue no worker serves: this test claims and completes them itself
    for (let round = 0; round < 20; round++) {
      const queue = `manual-${round}`
      const flow = await enqueueFlow({
        jobs: [
          { ...job("p1"), queue },
          { ...job("p2"), queue },
          { ...job("child", ["p1", "p2"]), queue }
        ]
      })
      const claimed = await run(JobRepo.use((r) => r.claim(`w-${round}`, 2, 60_000, [queue])))
      expect(claimed.length).toBe(2)
      // each parent completed in its own transaction, the two side by side: one waits on the other's lock
      await Promise.all(
        claimed.map((c) =>
          run(
            Effect.flatMap(SqlClient.SqlClient, (sql) =>
              sql.withTransaction(
                Effect.andThen(
                  JobRepo.use((r) => r.complete(`w-${round}`, [{ id: c.id, result: c.id }])),
                  Effect.sleep("20 millis")
                )
              )
            )
          )
        )
      )
      const now = await getFlow(flow.id)
      expect(statuses(now)).toEqual({ p1: "succeeded", p2: "succeeded", child: "queued" })
      const [row] = await run(
        Effect.flatMap(
          SqlClient.SqlClient,
          (sql) =>
            sql<{ pending: number }>`SELECT pending_deps AS pending FROM jobs WHERE id = ${now.jobs[2]!.id}`
        )
      )
      expect(row!.pending).toBe(0)
      const parents = Object.fromEntries(claimed.map((c, i) => [`p${i + 1}`, c.id]))
      if (round % 2 === 0) {
        const [child] = await run(JobRepo.use((r) => r.claim(`w-${round}`, 1, 60_000, [queue])))
        expect(child).toMatchObject({ flowId: flow.id, parents })
      } else {
        // a limited queue's claim (a function with fixed columns) reads parents beside it
        await run(Queue.use((q) => q.setLimits(queue, { concurrencyLimit: 5 })))
        const { jobs } = await run(QueueRepo.use((r) => r.claimLimited(`w-${round}`, 1, 60_000, [queue])))
        expect(jobs[0]).toMatchObject({ flowId: flow.id, parents })
      }
    }
  })
})
