/**
 * Retention of flows against a retry: a job of a finished flow retried while the maintainer prunes that flow
 * is kept, with its flow (the prune deleted it: the retry answered 200 and the job vanished, or was deleted
 * under the worker that had claimed it).
 */
import { afterAll, expect, it } from "bun:test"
import { SQL } from "bun"
import { Layer, ManagedRuntime } from "effect"
import * as Database from "../src/db/Database.ts"
import { demoKinds } from "../src/kinds/DemoKinds.ts"
import * as QueueLayer from "../src/queue/layer.ts"
import { Queue } from "../src/queue/Queue.ts"
import { RetentionRepo } from "../src/queue/RetentionRepo.ts"
import { freshDatabase } from "./support/database.ts"
import { waitFor } from "./support/runtime.ts"

const applicationName = "jobq-flows-prune-race-test"
const db = await freshDatabase(import.meta.file)
const runtime = ManagedRuntime.make(
  Layer.mergeAll(QueueLayer.layer(demoKinds), RetentionRepo.layer).pipe(
    Layer.provideMerge(Database.layerUrl(db.url, { applicationName, maxConnections: 4 }))
  )
)
const pg = new SQL({ url: db.url, max: 2 })
afterAll(async () => {
  await pg.close()
  await runtime.dispose()
  await db.drop()
})

it("a flow job retried while its finished flow is pruned is kept, and so is the flow", async () => {
  const flow = await runtime.runPromise(
    Queue.use((q) =>
      q.enqueueFlow({
        jobs: [{ name: "a", kind: "noop", payload: {}, queue: "prune-race", delayMs: 3_600_000 }]
      })
    )
  )
  const id = flow.jobs[0]!.id
  await runtime.runPromise(Queue.use((q) => q.cancel(id)))

  // a retry, not committed yet: the prune reads the flow as finished, then waits for the job's row
  const tx = await pg.reserve()
  try {
    await tx`BEGIN`
    await tx`UPDATE jobs SET status = 'queued', finished_at = NULL, attempts = 0, run_at = now() WHERE id = ${id}`
    const pruned = runtime.runPromise(RetentionRepo.use((r) => r.pruneFlows(0, 10)))
    await waitFor("the prune to wait for the retried job's row lock", async () => {
      const [row] = await pg`
        SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE application_name = ${applicationName} AND wait_event_type = 'Lock'`
      return row.n > 0 ? true : undefined
    })
    await tx`COMMIT`
    expect(await pruned).toBe(0)
  } finally {
    tx.release()
  }
  const [job] = await pg`SELECT status FROM jobs WHERE id = ${id}`
  expect(job?.status).toBe("queued")
  expect((await runtime.runPromise(Queue.use((q) => q.getFlow(flow.id)))).status).toBe("active")
})
