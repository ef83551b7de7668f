import { afterAll, describe, expect, it } from "bun:test"
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import * as Database from "../src/db/Database.ts"
import { defineKind } from "../src/domain/JobKind.ts"
import { JobRepo } from "../src/queue/JobRepo.ts"
import * as QueueLayer from "../src/queue/layer.ts"
import { Queue } from "../src/queue/Queue.ts"
import * as Worker from "../src/worker/index.ts"
import { freshDatabase } from "./support/database.ts"
import { waitFor } from "./support/runtime.ts"

const started = new Set<string>()
let release: () => void = () => {}
const gate = new Promise<void>((resolve) => {
  release = resolve
})
const gated = defineKind({
  name: "gated",
  payload: Schema.Struct({}),
  handler: (_, { job }) =>
    Effect.sync(() => started.add(job.id)).pipe(Effect.andThen(Effect.promise(() => gate)))
})
const kinds = [gated]

// one slot and room for four more: the first job runs, the next ones wait in the worker's buffer
const db = await freshDatabase(import.meta.file)
const databaseLayer = Database.layerUrl(db.url)
const queue = ManagedRuntime.make(QueueLayer.layer(kinds).pipe(Layer.provideMerge(databaseLayer)))
const worker = ManagedRuntime.make(
  Worker.layer({
    kinds,
    settings: { concurrency: 1, prefetch: 4, workerId: "buffered", shutdownGrace: "100 millis" }
  }).pipe(Layer.provide(databaseLayer))
)
afterAll(async () => {
  await queue.dispose()
  await db.drop()
})

const get = (id: string) => queue.runPromise(Queue.use((q) => q.get(id)))

describe("the worker's buffer (prefetch)", () => {
  it("claims ahead of its free slots, starts one job per slot, and handles buffered jobs right", async () => {
    await worker.runPromise(Effect.void)
    const jobs = await queue.runPromise(
      Queue.use((q) => q.enqueueMany(Array.from({ length: 5 }, () => ({ kind: "gated", payload: {} }))))
    )
    const ids = jobs.map((j) => j.job.id as string)
    // all five are leased to this worker, but only one runs
    await waitFor("five jobs held by the worker", async () => {
      const all = await Promise.all(ids.map(get))
      return all.every((j) => j.status === "running" && j.leaseOwner === "buffered") ? all : undefined
    })
    expect(started.size).toBe(1)
    const runningId = [...started][0]!
    const buffered = ids.filter((id) => id !== runningId)

    // a cancel of a buffered job ends it cancelled at once, without it ever starting, while the slot stays busy
    const outcome = await queue.runPromise(Queue.use((q) => q.cancel(buffered[0]!)))
    expect(outcome.outcome).toBe("cancel_requested")
    await waitFor("the buffered job to be cancelled", async () =>
      (await get(buffered[0]!)).status === "cancelled" ? true : undefined
    )
    expect(started.size).toBe(1)

    // shutdown gives the buffered jobs back at once (attempt unspent) and releases the running one after grace
    await worker.dispose()
    release()
    const after = await Promise.all(ids.map(get))
    expect(started.has(buffered[0]!)).toBe(false)
    expect(after.find((j) => j.id === buffered[0])!.status).toBe("cancelled")
    for (const job of after.filter((j) => j.id !== buffered[0])) {
      expect([job.status, job.attempts, job.leaseOwner]).toEqual(["queued", 0, null])
    }
    const stillRunning = await queue.runPromise(
      Effect.flatMap(JobRepo, (r) => r.list({ status: "running", limit: 10 }))
    )
    expect(stillRunning.jobs).toEqual([])
  })
})
