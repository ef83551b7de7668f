/**
 * Progress: visible on the job while it runs and kept after it ends, written at most once a second per job
 * (the latest value), the last value written before the job settles, bad values refused.
 */
import { describe, expect, it } from "bun:test"
import { Effect, Schema } from "effect"
import { SqlClient } from "effect/sql"
import type { Job } from "../src/domain/Job.ts"
import { defineKind, maxProgressBytes, maxProgressDepth } from "../src/domain/JobKind.ts"
import { Queue } from "../src/queue/Queue.ts"
import { progressText } from "../src/worker/Progress.ts"
import { setupWorkerTests, waitFor } from "./support/runtime.ts"

/** Reports { step, of } every `everyMs` for `steps` steps, then succeeds. */
const chatty = defineKind({
  name: "chatty",
  payload: Schema.Struct({ steps: Schema.Int, everyMs: Schema.Int }),
  handler: ({ steps, everyMs }, { progress }) =>
    Effect.gen(function* () {
      for (let step = 1; step <= steps; step++) {
        yield* progress({ step, of: steps })
        yield* Effect.sleep(everyMs)
      }
      return { done: true }
    })
})
const oversized = defineKind({
  name: "oversized",
  payload: Schema.Struct({}),
  handler: (_, { progress }) => progress({ text: "x".repeat(maxProgressBytes) })
})
const kinds = [chatty, oversized]
const { runtime } = await setupWorkerTests(import.meta.file, kinds, "jobq-progress-test")

const sql = <A extends object>(f: (sql: SqlClient.SqlClient) => Effect.Effect<ReadonlyArray<A>, unknown>) =>
  runtime.runPromise(Effect.flatMap(SqlClient.SqlClient, f))

// every write of a job's progress, with the database's clock (a test-only trigger)
await sql(
  (s) => s`CREATE TABLE progress_writes (job_id uuid, value jsonb, at timestamptz DEFAULT clock_timestamp())`
)
await sql(
  (s) => s`CREATE FUNCTION log_progress() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO progress_writes (job_id, value) VALUES (NEW.id, NEW.progress); RETURN NULL; END $$`
)
await sql(
  (s) =>
    s`CREATE TRIGGER log_progress AFTER UPDATE OF progress ON jobs FOR EACH ROW EXECUTE FUNCTION log_progress()`
)

const enqueue = (kind: string, payload: unknown) =>
  runtime.runPromise(Queue.use((q) => q.enqueue({ kind, payload, maxAttempts: 1 }))).then((e) => e.job)
const get = (id: string) => runtime.runPromise(Queue.use((q) => q.get(id)))
const reaches = (id: string, what: string, test: (job: Job) => boolean) =>
  waitFor(`job ${id}: ${what}`, async () => {
    const job = await get(id)
    return test(job) ? job : undefined
  })

describe("progress", () => {
  it("is visible while the job runs, written at most once a second, and its last value kept", async () => {
    // 26 reports over 1.3 s
    const job = await enqueue("chatty", { steps: 26, everyMs: 50 })
    const seen = await reaches(job.id, "progress while running", (j) => j.progress !== null)
    expect(seen.status).toBe("running")
    const done = await reaches(job.id, "succeeded", (j) => j.status === "succeeded")
    expect(done.progress).toEqual({ step: 26, of: 26 })
    const writes = await sql<{ value: unknown; at: Date }>(
      (s) => s`SELECT value, at FROM progress_writes WHERE job_id = ${job.id} ORDER BY at`
    )
    // one a second after the first report, the last at the end: 26 reports, 2 writes
    expect(writes.length).toBe(2)
    expect(writes.at(-1)!.value).toEqual({ step: 26, of: 26 })
    for (let i = 1; i < writes.length - 1; i++) {
      expect(writes[i]!.at.getTime() - writes[i - 1]!.at.getTime()).toBeGreaterThanOrEqual(950)
    }
  })

  it("a job that reports nothing writes no progress", async () => {
    const job = await enqueue("chatty", { steps: 0, everyMs: 0 })
    const done = await reaches(job.id, "succeeded", (j) => j.status === "succeeded")
    expect(done.progress).toBeNull()
    const writes = await sql<{ n: number }>(
      (s) => s`SELECT count(*)::int AS n FROM progress_writes WHERE job_id = ${job.id}`
    )
    expect(writes[0]!.n).toBe(0)
  })

  it("an oversized value fails the report (and, unhandled, the attempt), recording nothing", async () => {
    const job = await enqueue("oversized", {})
    const failed = await reaches(job.id, "failed", (j) => j.status === "failed_permanent")
    expect(failed.lastError).toContain(`at most ${maxProgressBytes}`)
    expect(failed.progress).toBeNull()
  })

  it("refuses values too deep, not JSON, or too large", () => {
    let deep: unknown = 1
    for (let i = 0; i <= maxProgressDepth; i++) deep = [deep]
    expect(String((progressText(deep) as Error).message)).toContain("deeper than")
    expect(String((progressText(10n) as Error).message)).toContain("not JSON")
    expect(String((progressText(undefined) as Error).message)).toContain("not JSON")
    expect(progressText({ done: 3, of: 10 })).toBe('{"done":3,"of":10}')
  })
})
