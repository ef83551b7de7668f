/**
 * A job announced while a claim is in flight is claimed as soon as that claim lands, not at the next poll.
 * With claims pipelined the fetch fiber no longer waits on its claim: a notification it takes while the
 * claim runs, and cannot act on yet (no room beside the claim), must not be lost (found in review: the job
 * waited for WORKER_POLL_INTERVAL). A statement trigger in the test database holds the claim for a moment.
 */
import { describe, expect, it } from "bun:test"
import { started } from "./support/processes.ts"
import { waitFor } from "./support/runtime.ts"
import { setupTimedJobs } from "./support/timedJobs.ts"

const { sql, enqueueTimed, spansOf, spawn, stopAll } = await setupTimedJobs(import.meta.file)

// while `slow_claims` has a row, every statement that updates `jobs` (a claim, a completion) first sleeps
await sql(
  (s) => s`
    CREATE TABLE slow_claims (ms int NOT NULL)`
)
await sql(
  (s) => s`
    CREATE FUNCTION slow_claims() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_sleep(ms / 1000.0) FROM slow_claims;
      RETURN NULL;
    END $$`
)
await sql(
  (s) => s`
    CREATE TRIGGER slow_claims BEFORE UPDATE ON jobs FOR EACH STATEMENT EXECUTE FUNCTION slow_claims()`
)

describe("a notification taken while a claim is in flight", () => {
  it("claims its job once that claim lands, long before the next poll", async () => {
    const queue = "wake-in-flight"
    const worker = spawn("wake-in-flight", {
      WORKER_QUEUES: queue,
      WORKER_CONCURRENCY: "4",
      WORKER_CLAIMS_IN_FLIGHT: "2",
      // a lost wake-up would show as a job waiting this long
      WORKER_POLL_INTERVAL: "20 seconds"
    })
    await started(worker)
    await sql((s) => s`INSERT INTO slow_claims VALUES (600)`)
    // the first job's claim sleeps 600 ms in the trigger, on a snapshot taken before the second job exists
    await enqueueTimed(queue, 1, 0)
    await Bun.sleep(200)
    await sql((s) => s`DELETE FROM slow_claims`)
    const enqueuedAt = Date.now()
    await enqueueTimed(queue, 1, 0)
    const spans = await waitFor(
      "both jobs to run",
      async () => {
        const done = await spansOf(queue)
        return done.length === 2 ? done : undefined
      },
      { timeoutMs: 30_000 }
    )
    await stopAll()
    const second = Math.max(...spans.map((s) => s.began))
    // the first claim lands about 400 ms after the second job was enqueued; the poll would be 20 s
    expect(second - enqueuedAt).toBeLessThan(3_000)
  })
})
