/**
 * Flows under JOB_RETENTION=0: a job outside a flow is deleted as it succeeds, a flow's jobs are kept
 * (with their results, which dependents read) until the whole flow finished, and then deleted with it.
 */
import { afterAll, describe, expect, it } from "bun:test"
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../src/db/Database.ts"
import { defineKind } from "../src/domain/JobKind.ts"
import * as QueueLayer from "../src/queue/layer.ts"
import { Queue } from "../src/queue/Queue.ts"
import { RetentionRepo } from "../src/queue/RetentionRepo.ts"
import * as Worker from "../src/worker/index.ts"
import { freshDatabase } from "./support/database.ts"
import { waitFor } from "./support/runtime.ts"

const seen = new Map<string, Readonly<Record<string, unknown>>>()
const step = defineKind({
  name: "step",
  payload: Schema.Struct({ name: Schema.String }),
  handler: ({ name }, { parents }) =>
    Effect.sync(() => seen.set(name, parents)).pipe(Effect.as({ from: name }))
})
const kinds = [step]
const db = await freshDatabase(import.meta.file)
const runtime = ManagedRuntime.make(
  Layer.mergeAll(
    Worker.layer({ kinds, settings: { concurrency: 4, retention: 0 } }),
    QueueLayer.layer(kinds),
    RetentionRepo.layer
  ).pipe(Layer.provideMerge(Database.layerUrl(db.url, { applicationName: "jobq-flows-retention-test" })))
)
afterAll(async () => {
  await runtime.dispose()
  await db.drop()
})
const count = async (query: string) =>
  (
    await runtime.runPromise(
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) => sql<{ n: number }>`SELECT (${sql.literal(query)})::int AS n`
      )
    )
  )[0]!.n

describe("JOB_RETENTION=0 and flows", () => {
  it("keeps a flow's succeeded jobs while the flow runs, hands their results on, and deletes the flow once it ended", async () => {
    const plain = await runtime.runPromise(
      Queue.use((q) => q.enqueue({ kind: "step", payload: { name: "plain" } }))
    )
    const flow = await runtime.runPromise(
      Queue.use((q) =>
        q.enqueueFlow({
          jobs: [
            { name: "a", kind: "step", payload: { name: "a" } },
            { name: "b", kind: "step", payload: { name: "b" }, dependsOn: ["a"], delayMs: 1500 }
          ]
        })
      )
    )
    await waitFor("the plain job to be deleted as it succeeded", async () =>
      (await count(`SELECT count(*) FROM jobs WHERE id = '${plain.job.id}'`)) === 0 ? true : undefined
    )
    await waitFor("a to succeed", async () =>
      (await count(`SELECT count(*) FROM jobs WHERE flow_id = '${flow.id}' AND status = 'succeeded'`)) === 1
        ? true
        : undefined
    )
    // b waits for its run_at: the flow has not ended, so nothing of it is pruned
    expect(await runtime.runPromise(RetentionRepo.use((r) => r.pruneFlows(0, 10)))).toBe(0)
    expect(await count(`SELECT count(*) FROM jobs WHERE flow_id = '${flow.id}'`)).toBe(2)
    const done = await waitFor("the flow to end", async () => {
      const now = await runtime.runPromise(Queue.use((q) => q.getFlow(flow.id)))
      return now.status === "active" ? undefined : now
    })
    expect(done.status).toBe("succeeded")
    expect(seen.get("b")).toEqual({ a: { from: "a" } })
    // 1, unless the maintainer's own prune pass came first
    expect(await runtime.runPromise(RetentionRepo.use((r) => r.pruneFlows(0, 10)))).toBeLessThanOrEqual(1)
    expect(await count(`SELECT count(*) FROM jobs WHERE flow_id = '${flow.id}'`)).toBe(0)
    expect(await count(`SELECT count(*) FROM flows WHERE id = '${flow.id}'`)).toBe(0)
    expect(await count(`SELECT count(*) FROM job_deps`)).toBe(0)
  })
})
