/**
 * Listing jobs: filters, keyset pagination that stays exact while jobs are inserted and change state, a
 * bounded page size, and the `jobq_ready` notification an enqueue sends.
 */
import { describe, expect, it } from "bun:test"
import { Effect } from "effect"
import type { Job, NewJob } from "../src/domain/Job.ts"
import { JobRepo } from "../src/queue/JobRepo.ts"
import { type ListQuery, maxPageSize, Queue } from "../src/queue/Queue.ts"
import { notificationsDuring, sentinel } from "./support/notifications.ts"
import { setupQueueTests, waitFor } from "./support/runtime.ts"

const { run } = await setupQueueTests(import.meta.file)

let n = 0
const uniqueQueue = () => `list-${++n}`

const enqueueMany = (items: ReadonlyArray<NewJob>) =>
  run(Queue.use((q) => q.enqueueMany(items))).then((rs) => rs.map((r) => r.job))
const noops = (queue: string, count: number, kind = "noop") =>
  enqueueMany(
    Array.from({ length: count }, (_, i) => ({
      kind,
      payload: kind === "noop" ? {} : { ms: i },
      queue
    }))
  )
const list = (query: ListQuery) => run(Queue.use((q) => q.list(query)))
const ids = (jobs: ReadonlyArray<Job>) => jobs.map((j) => j.id as string)

/** Every page of a query, following nextCursor to the end. */
const allPages = async (query: ListQuery) => {
  const pages: Array<ReadonlyArray<Job>> = []
  let cursor: string | undefined
  for (;;) {
    const page = await list({ ...query, cursor })
    pages.push(page.jobs)
    if (page.nextCursor === null) return pages
    cursor = page.nextCursor
  }
}

describe("list filters", () => {
  it("filters by queue, status and kind, alone and together", async () => {
    const queue = uniqueQueue()
    const other = uniqueQueue()
    const sleeps = await noops(queue, 3, "sleep")
    const plain = await noops(queue, 3)
    const elsewhere = await noops(other, 2, "sleep")
    // sleeps[0] running, plain[0] cancelled, plain[1] succeeded
    const claimed = await run(JobRepo.use((r) => r.claim("w1", 1, 30_000, [queue])))
    expect(ids(claimed)).toEqual([sleeps[0]!.id])
    await run(Queue.use((q) => q.cancel(plain[0]!.id)))
    await run(
      Effect.gen(function* () {
        const repo = yield* JobRepo
        // claim order is priority, run_at, id; take the rest and hand all but plain[1] back
        const rest = yield* repo.claim("w2", 10, 30_000, [queue])
        yield* repo.complete("w2", [{ id: plain[1]!.id, result: null }])
        yield* repo.release(
          "w2",
          rest.map((j) => j.id).filter((id) => id !== plain[1]!.id)
        )
      })
    )

    const sorted = (js: ReadonlyArray<Job>) => [...ids(js)].sort()
    expect(sorted((await list({ queue })).jobs)).toEqual(sorted([...sleeps, ...plain]))
    expect(ids((await list({ queue, status: "running" })).jobs)).toEqual([sleeps[0]!.id])
    expect(ids((await list({ queue, status: "cancelled" })).jobs)).toEqual([plain[0]!.id])
    expect(ids((await list({ queue, status: "succeeded" })).jobs)).toEqual([plain[1]!.id])
    expect(sorted((await list({ queue, status: "queued" })).jobs)).toEqual(
      sorted([sleeps[1]!, sleeps[2]!, plain[2]!])
    )
    expect(sorted((await list({ queue, kind: "sleep" })).jobs)).toEqual(sorted(sleeps))
    expect(ids((await list({ queue, kind: "noop", status: "queued" })).jobs)).toEqual([plain[2]!.id])
    expect((await list({ queue, kind: "cpu_hash" })).jobs).toEqual([])
    expect((await list({ queue, status: "failed_permanent" })).jobs).toEqual([])

    const running = (await list({ status: "running", limit: 500 })).jobs
    expect(running.every((j) => j.status === "running")).toBe(true)
    expect(ids(running)).toContain(sleeps[0]!.id)
    const sleepsAnywhere = ids((await list({ kind: "sleep", limit: 500 })).jobs)
    for (const j of [...sleeps, ...elsewhere]) expect(sleepsAnywhere).toContain(j.id)
    expect(sleepsAnywhere).not.toContain(plain[2]!.id)
  })

  it("returns jobs in id (creation) order, and an exact last page has no next cursor", async () => {
    const queue = uniqueQueue()
    const jobs = await noops(queue, 6)
    const pages = await allPages({ queue, limit: 3 })
    expect(pages.map(ids)).toEqual([ids(jobs.slice(0, 3)), ids(jobs.slice(3))])
    const empty = await list({ queue: uniqueQueue() })
    expect(empty).toEqual({ jobs: [], nextCursor: null })
  })
})

describe("keyset pagination", () => {
  it("returns every job exactly once while another fiber keeps inserting and jobs change state", async () => {
    const queue = uniqueQueue()
    const before = ids(await noops(queue, 300))

    let stop = false
    let inserted = 0
    const inserter = (async () => {
      while (!stop) {
        await run(Queue.use((q) => q.enqueue({ kind: "noop", payload: {}, queue })))
        inserted++
      }
    })()
    // state changes move jobs between statuses, never between positions in id order
    const settler = (async () => {
      while (!stop) {
        const claimed = await run(JobRepo.use((r) => r.claim("settler", 5, 30_000, [queue])))
        await run(
          JobRepo.use((r) =>
            r.complete(
              "settler",
              claimed.map((j) => ({ id: j.id, result: null }))
            )
          )
        )
      }
    })()

    const seen: Array<string> = []
    let cursor: string | undefined
    let pagesWhileInserting = 0
    try {
      await waitFor("the inserter to start", async () => (inserted > 0 ? true : undefined))
      for (;;) {
        const progress = inserted
        const page = await list({ queue, cursor, limit: 20 })
        seen.push(...ids(page.jobs))
        if (!stop) {
          pagesWhileInserting++
          if (before.every((id) => seen.includes(id))) {
            stop = true
            await Promise.all([inserter, settler])
          } else {
            // make sure at least one insert lands between this page and the next
            await waitFor(
              "the inserter to make progress",
              async () => (inserted > progress ? true : undefined),
              {
                intervalMs: 1
              }
            )
          }
        }
        if (page.nextCursor === null) break
        cursor = page.nextCursor
      }
    } finally {
      stop = true
      await Promise.all([inserter, settler])
    }

    expect(pagesWhileInserting).toBeGreaterThanOrEqual(15)
    expect(inserted).toBeGreaterThanOrEqual(pagesWhileInserting - 1)
    expect(new Set(seen).size).toBe(seen.length)
    expect([...seen].sort()).toEqual(seen)
    for (const id of before) expect(seen.filter((s) => s === id).length).toBe(1)
    // with the inserter stopped before the last pages, nothing it wrote was missed either
    const everything = (await allPages({ queue, limit: maxPageSize })).flat()
    expect(seen).toEqual(ids(everything))
    expect(everything.length).toBe(300 + inserted)
  })

  it("pages through a filter: each status page holds only that status", async () => {
    const queue = uniqueQueue()
    const jobs = await noops(queue, 30)
    for (const job of jobs.filter((_, i) => i % 3 === 0)) await run(Queue.use((q) => q.cancel(job.id)))
    const pages = await allPages({ queue, status: "cancelled", limit: 4 })
    expect(pages.length).toBe(3)
    expect(pages.flat().every((j) => j.status === "cancelled")).toBe(true)
    expect(ids(pages.flat())).toEqual(ids(jobs.filter((_, i) => i % 3 === 0)))
  })
})

describe("page size", () => {
  it("is bounded: 0 or less asks for one job, 10000 for the maximum; the default is 50", async () => {
    const queue = uniqueQueue()
    const jobs = await noops(queue, maxPageSize + 20)
    expect(maxPageSize).toBe(500)

    const huge = await list({ queue, limit: 10_000 })
    expect(huge.jobs.length).toBe(maxPageSize)
    expect(huge.nextCursor).toBe(jobs[maxPageSize - 1]!.id)
    const rest = await list({ queue, limit: 10_000, cursor: huge.nextCursor! })
    expect(ids(rest.jobs)).toEqual(ids(jobs.slice(maxPageSize)))
    expect(rest.nextCursor).toBeNull()

    for (const limit of [0, -5]) {
      const tiny = await list({ queue, limit })
      expect(ids(tiny.jobs)).toEqual([jobs[0]!.id])
      expect(tiny.nextCursor).toBe(jobs[0]!.id)
    }
    expect((await list({ queue })).jobs.length).toBe(50)
  })

  it("a fractional or non-numeric limit still gives a valid page", async () => {
    const queue = uniqueQueue()
    await noops(queue, 5)
    expect((await list({ queue, limit: 2.5 })).jobs.length).toBe(2)
    expect((await list({ queue, limit: Number.NaN })).jobs.length).toBe(5)
  })
})

describe("ready notifications", () => {
  it("an enqueue sends NOTIFY jobq_ready with the queue's name", async () => {
    const queue = uniqueQueue()
    const { seen } = await run(
      notificationsDuring(
        "jobq_ready",
        Queue.use((q) => q.enqueue({ kind: "noop", payload: {}, queue })),
        (payload) => payload === queue
      )
    )
    expect(seen).toEqual([queue])
  })

  it("a batch sends one notification per queue; a delayed job names when it becomes ready", async () => {
    const a = uniqueQueue()
    const b = uniqueQueue()
    const later = uniqueQueue()
    const { result, seen } = await run(
      notificationsDuring(
        "jobq_ready",
        Effect.gen(function* () {
          const q = yield* Queue
          yield* q.enqueueMany([
            { kind: "noop", payload: {}, queue: a },
            { kind: "noop", payload: {}, queue: b },
            { kind: "noop", payload: {}, queue: a }
          ])
          const delayed = yield* q.enqueue({ kind: "noop", payload: {}, queue: later, delayMs: 60_000 })
          yield* sentinel("jobq_ready", "sentinel")
          return delayed.job
        }),
        (payload) => payload === "sentinel"
      )
    )
    expect(seen.slice(0, 2).sort()).toEqual([a, b].sort())
    expect(seen.length).toBe(4)
    expect(seen[3]).toBe("sentinel")
    // `queue@<epoch ms>`; the database keeps microseconds, so allow the millisecond's rounding
    const [name, at] = seen[2]!.split("@")
    expect(name).toBe(later)
    expect(Math.abs(Number(at) - result.runAt.getTime())).toBeLessThanOrEqual(1)
  })
})
