/**
 * A handler's result that cannot be stored fails its own job, permanently, with the reason, and nothing else:
 * a BigInt or a cycle made `JSON.stringify` throw inside the completer, which stopped for good (every later
 * success of that worker waited for ever, its slots filled, shutdown hung), and an oversized result failed the
 * batch statement that completed a thousand other jobs with it. With `JOB_RETENTION=0` a result that is not kept
 * (outside flows) is not encoded, so nothing about it can fail the job.
 */
import { afterAll, describe, expect, it } from "bun:test"
import { SQL } from "bun"
import { Duration, Effect, Layer, ManagedRuntime, Schema } from "effect"
import * as Database from "../src/db/Database.ts"
import { defineKind } from "../src/domain/JobKind.ts"
import * as QueueLayer from "../src/queue/layer.ts"
import { Queue } from "../src/queue/Queue.ts"
import { maxResultLength } from "../src/queue/results.ts"
import * as Worker from "../src/worker/index.ts"
import { freshDatabase } from "./support/database.ts"
import { waitFor } from "./support/runtime.ts"

const returning = (name: string, result: () => unknown) =>
  defineKind({ name, payload: Schema.Struct({ i: Schema.Number }), handler: () => Effect.sync(result) })
const cyclic = () => {
  const value: Record<string, unknown> = { ok: true }
  value.self = value
  return value
}
const kinds = [
  returning("fine_result", () => ({ ok: true })),
  returning("bigint_result", () => ({ count: 12n })),
  returning("cyclic_result", cyclic),
  returning("huge_result", () => "x".repeat(maxResultLength)),
  returning("function_result", () => () => 1)
]

const worker = async (deleteSucceeded: boolean) => {
  const db = await freshDatabase(`${import.meta.file}-${deleteSucceeded ? "deleting" : "kept"}`)
  const runtime = ManagedRuntime.make(
    Layer.mergeAll(
      Worker.layer({
        kinds,
        settings: { concurrency: 8, ...(deleteSucceeded ? { retentionSucceeded: Duration.zero } : {}) }
      }),
      QueueLayer.layer(kinds)
    ).pipe(Layer.provideMerge(Database.layerUrl(db.url, { applicationName: "jobq-worker-results-test" })))
  )
  const pg = new SQL({ url: db.url, max: 1 })
  afterAll(async () => {
    await runtime.dispose()
    await pg.close()
    await db.drop()
  })
  const enqueueMany = (jobs: ReadonlyArray<{ kind: string; i: number }>) =>
    runtime
      .runPromise(Queue.use((q) => q.enqueueMany(jobs.map(({ kind, i }) => ({ kind, payload: { i } })))))
      .then((enqueued) => enqueued.map((e) => e.job.id as string))
  const rows = (ids: ReadonlyArray<string>) =>
    pg`SELECT id::text, kind, status, result, last_error FROM jobs WHERE id = ANY(${ids}::uuid[])`
  return { enqueueMany, rows }
}

const bad = ["bigint_result", "cyclic_result", "huge_result"]
const mixedBatch = [
  ...Array.from({ length: 40 }, (_, i) => ({ kind: "fine_result", i })),
  ...bad.map((kind) => ({ kind, i: 0 })),
  { kind: "function_result", i: 0 },
  ...Array.from({ length: 40 }, (_, i) => ({ kind: "fine_result", i: 40 + i }))
]

describe("results, kept", async () => {
  const { enqueueMany, rows } = await worker(false)

  it("an unstorable result fails its job permanently; the jobs beside it and after it complete", async () => {
    const ids = await enqueueMany(mixedBatch)
    const badIds = ids.filter((_, i) => bad.includes(mixedBatch[i]!.kind))
    const failed = await waitFor("the unstorable results to fail their jobs", async () => {
      const found = await rows(badIds)
      return found.length === 3 && found.every((r: any) => r.status === "failed_permanent")
        ? found
        : undefined
    })
    const reason = Object.fromEntries(failed.map((r: any) => [r.kind, r.last_error]))
    expect(reason.bigint_result).toContain("cannot be stored as JSON")
    expect(reason.cyclic_result).toContain("cannot be stored as JSON")
    expect(reason.huge_result).toContain(`at most ${maxResultLength}`)
    // every other job of the batch completed, and so do jobs enqueued after it
    const later = await enqueueMany(
      Array.from({ length: 30 }, (_, i) => ({ kind: "fine_result", i: 100 + i }))
    )
    const good = [...ids.filter((id) => !badIds.includes(id)), ...later]
    const stored = await waitFor("every other job to complete", async () => {
      const found = await rows(good)
      return found.every((r: any) => r.status === "succeeded") ? found : undefined
    })
    expect(stored.length).toBe(good.length)
    const byKind = (kind: string) => stored.filter((r: any) => r.kind === kind)
    expect(byKind("fine_result").every((r: any) => r.result?.ok === true)).toBe(true)
    // what JSON drops (a function) is no result
    expect(byKind("function_result").map((r: any) => r.result)).toEqual([null])
  })
})

describe("results, deleting succeeded jobs (JOB_RETENTION=0)", async () => {
  const { enqueueMany, rows } = await worker(true)

  it("a result that is not kept is not encoded: every job completes, the unstorable ones too, and later ones", async () => {
    const ids = await enqueueMany(mixedBatch)
    const later = await enqueueMany(
      Array.from({ length: 30 }, (_, i) => ({ kind: "fine_result", i: 100 + i }))
    )
    await waitFor("every job to complete (and be deleted)", async () =>
      (await rows([...ids, ...later])).length === 0 ? true : undefined
    )
  })
})
