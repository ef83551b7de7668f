/**
 * `WORKER_PREFETCH=auto`: the claim buffer follows observed job and claim times. Short jobs: what the slots
 * finish in 250 ms (or two claims), up to the ceiling.
 * Long jobs: nothing held beyond free slots, so a job never waits in a busy worker's buffer while another
 * worker is idle (checked on the database's own record across two worker processes).
 */
import { describe, expect, it } from "bun:test"
import * as ClaimSize from "../src/worker/ClaimSize.ts"
import { started } from "./support/processes.ts"
import { waitFor } from "./support/runtime.ts"
import { setupTimedJobs } from "./support/timedJobs.ts"

const { enqueueTimed, spansOf, spawn, statusCounts } = await setupTimedJobs(import.meta.file)

describe("the adaptive claim size", () => {
  it("claims for free slots only before it has seen a job end; the ceiling for jobs shorter than a claim; none for long jobs", () => {
    const size = ClaimSize.make(8, 500)
    expect(size.prefetch()).toBe(0)
    size.claimed(5)
    for (let i = 0; i < 50; i++) size.ran(0.05)
    expect(size.prefetch()).toBe(500)
    const long = ClaimSize.make(8, 500)
    for (let i = 0; i < 50; i++) long.claimed(5)
    for (let i = 0; i < 50; i++) long.ran(1_000)
    expect(long.prefetch()).toBe(0)
    // 20 ms jobs, 5 ms claims: what 8 slots finish in two claims
    const medium = ClaimSize.make(8, 500)
    for (let i = 0; i < 200; i++) medium.claimed(5)
    for (let i = 0; i < 200; i++) medium.ran(20)
    expect(medium.prefetch()).toBe(4)
  })

  it("bounds the buffer of short jobs in time, not only in count: 250 ms of work, the ceiling only for jobs that short", () => {
    // 10 ms jobs while claims take 10 ms (a loaded database): short, yet 1,000 of them are 1.25 s of work
    // for 8 slots; the buffer holds what the slots finish in 250 ms
    const loaded = ClaimSize.make(8, 1000)
    for (let i = 0; i < 200; i++) loaded.claimed(10)
    for (let i = 0; i < 200; i++) loaded.ran(10)
    expect(loaded.prefetch()).toBe(200)
    // 1 ms jobs: 2,000 fit in 250 ms, so the ceiling
    const quick = ClaimSize.make(8, 1000)
    for (let i = 0; i < 200; i++) quick.claimed(10)
    for (let i = 0; i < 200; i++) quick.ran(1)
    expect(quick.prefetch()).toBe(1000)
    // claims slower than the budget: two claims' worth of work, so the slots never run dry in between
    const slowClaims = ClaimSize.make(8, 1000)
    for (let i = 0; i < 200; i++) slowClaims.claimed(200)
    for (let i = 0; i < 200; i++) slowClaims.ran(20)
    expect(slowClaims.prefetch()).toBe(160)
  })

  it("long jobs: a busy worker holds none beyond its slot, so an idle worker started later gets work at once", async () => {
    const queue = "auto-long"
    const env = { WORKER_QUEUES: queue, WORKER_CONCURRENCY: "1", WORKER_PREFETCH: "auto" }
    const first = spawn("auto-a", env)
    await started(first)
    await enqueueTimed(queue, 6, 1_000)
    await waitFor("the first worker to run a job", async () =>
      (await statusCounts(queue)).running === 1 ? true : undefined
    )
    const second = spawn("auto-b", env)
    await started(second)
    await waitFor(
      "the six jobs to end",
      async () => ((await statusCounts(queue)).succeeded === 6 ? true : undefined),
      {
        timeoutMs: 20_000
      }
    )
    const spans = await spansOf(queue)
    expect(spans.length).toBe(6)
    expect(new Set(spans.map((s) => s.worker)).size).toBe(2)
    // no job waited in a buffer: each began right after its claim (a buffered one waits a whole job, 1 s)
    const waits = spans.map((s) => Math.round(s.began - s.claimed))
    expect(Math.max(...waits)).toBeLessThan(500)
  })
})
