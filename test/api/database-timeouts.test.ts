/**
 * A 503 means nothing happened. Another session holds a lock the API's statement needs, longer than the
 * API waits: the answer is 503 + Retry-After, and once the lock goes the database shows that the statement
 * changed nothing (an insert given up on by the client alone used to commit then, so the client's retry made
 * a second job). The retry then succeeds, exactly once.
 */
import { afterAll, describe, expect, it } from "bun:test"
import { SQL } from "bun"
import { apiApplicationName, expectProblem, json, setupApiTests, webHandler } from "../support/api.ts"
import { waitFor } from "../support/runtime.ts"

// lock waits end after 300 ms: a test holds its lock for as long as it takes to see the answer
const api = await setupApiTests(import.meta.file, {
  database: { lockTimeout: "300 millis", statementTimeout: "5 seconds" }
})
const admin = new SQL({ url: api.db.url, max: 4 })
afterAll(() => admin.close())

type Lock = (tx: SQL) => Promise<unknown>
const jobsTable: Lock = (tx) => tx`LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE`
const jobRow =
  (id: string): Lock =>
  (tx) =>
    tx`SELECT id FROM jobs WHERE id = ${id} FOR UPDATE`

/**
 * Takes `lock` in a transaction on a session of its own and holds it while `during` runs; then releases it
 * and waits until the API's sessions are idle, so that what the API sent has committed or not.
 */
const whileHeld = async <A>(lock: Lock, during: () => Promise<A>): Promise<A> => {
  const session = await admin.reserve()
  try {
    await session`BEGIN`
    await lock(session)
    return await during()
  } finally {
    await session`ROLLBACK`
    session.release()
    await apiIdle()
  }
}

/**
 * Waits until none of the API's sessions runs a statement: whatever it sent has then committed or not, and
 * the rows show it.
 */
const apiIdle = () =>
  waitFor("the API's sessions to be idle", async () => {
    const [{ active }] = await admin`
      SELECT count(*)::int AS active FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = ${apiApplicationName} AND state = 'active'`
    return active === 0 ? true : undefined
  })

const countMarked = async (marker: string) => {
  const [{ n }] = await admin`SELECT count(*)::int AS n FROM jobs WHERE payload->>'seed' = ${marker}`
  return n as number
}

const expectUnavailable = async (response: Response) => {
  const problem = await expectProblem(response, 503, "database-unavailable")
  expect(Number(response.headers.get("retry-after"))).toBeGreaterThan(0)
  return problem
}

const newJob = (marker: string) => ({ kind: "cpu_hash", payload: { seed: marker, rounds: 1 } })

/** POST /jobs through an API handler of its own. */
const postJob = (handler: (request: Request) => Promise<Response>, marker: string) =>
  handler(
    new Request("http://api.test/jobs", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(newJob(marker))
    })
  )

describe("a statement blocked longer than the API waits: 503, and nothing changed", () => {
  it("POST /jobs (no idempotency key) on a locked table creates no job; the retry creates exactly one", async () => {
    const marker = crypto.randomUUID()
    await whileHeld(jobsTable, async () => {
      const problem = await expectUnavailable(await api.postJson("/jobs", newJob(marker)))
      expect(problem.detail).toContain("lock")
    })
    expect(await countMarked(marker)).toBe(0)
    expect((await api.postJson("/jobs", newJob(marker))).status).toBe(201)
    expect(await countMarked(marker)).toBe(1)
  })

  it("POST /jobs/batch on a locked table stores none of the batch; the retry stores all of it once", async () => {
    const marker = crypto.randomUUID()
    const body = { jobs: [newJob(marker), newJob(marker), newJob(marker)] }
    await whileHeld(jobsTable, async () => {
      await expectUnavailable(await api.postJson("/jobs/batch", body))
    })
    expect(await countMarked(marker)).toBe(0)
    expect((await api.postJson("/jobs/batch", body)).status).toBe(200)
    expect(await countMarked(marker)).toBe(3)
  })

  it("cancel of a job whose row is locked does not cancel it; the retry does", async () => {
    const id = (await json(await api.postJson("/jobs", newJob("cancel")))).id as string
    await whileHeld(jobRow(id), async () => {
      await expectUnavailable(await api.request(`/jobs/${id}/cancel`, { method: "POST" }))
    })
    const [row] = await admin`SELECT status, cancel_requested_at FROM jobs WHERE id = ${id}`
    expect(row).toEqual({ status: "queued", cancel_requested_at: null })
    const retried = await api.request(`/jobs/${id}/cancel`, { method: "POST" })
    expect(retried.status).toBe(200)
    expect((await json(retried)).job.status).toBe("cancelled")
  })

  it("retry of a cancelled job whose row is locked does not requeue it; the retry does", async () => {
    const id = (await json(await api.postJson("/jobs", newJob("retry")))).id as string
    expect((await api.request(`/jobs/${id}/cancel`, { method: "POST" })).status).toBe(200)
    await whileHeld(jobRow(id), async () => {
      await expectUnavailable(await api.request(`/jobs/${id}/retry`, { method: "POST" }))
    })
    const [row] = await admin`SELECT status FROM jobs WHERE id = ${id}`
    expect(row.status).toBe("cancelled")
    const retried = await api.request(`/jobs/${id}/retry`, { method: "POST" })
    expect(retried.status).toBe(200)
    expect((await json(retried)).status).toBe("queued")
  })

  it("requests pipelined on one connection behind a blocked one: each ends as its own 503, none commits", async () => {
    // one connection: the statements queue on it, and each waits for the lock in turn
    const pipelined = webHandler(api.db.url, { database: { maxConnections: 1, lockTimeout: "200 millis" } })
    const markers = Array.from({ length: 4 }, () => crypto.randomUUID())
    await whileHeld(jobsTable, async () => {
      const answers = await Promise.all(markers.map((marker) => postJob(pipelined, marker)))
      for (const answer of answers) await expectUnavailable(answer)
    })
    for (const marker of markers) expect(await countMarked(marker)).toBe(0)
  })
})

/** Until one of the API's statements waits for a lock on the server. */
const apiWaitsForLock = () =>
  waitFor("an API statement to wait for its lock", async () => {
    const [{ waiting }] = await admin`
      SELECT count(*)::int AS waiting FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = ${apiApplicationName}
        AND wait_event_type = 'Lock'`
    return waiting > 0 ? true : undefined
  })

describe("no room at the database", () => {
  it("a request behind one that holds the only place runs once the lock goes, within the timeout", async () => {
    const narrow = webHandler(api.db.url, {
      database: { maxConnections: 1, multiplex: 1, lockTimeout: "5 seconds" },
      databaseAcquireTimeout: "5 seconds"
    })
    const [first, second] = [crypto.randomUUID(), crypto.randomUUID()]
    const answers = await whileHeld(jobsTable, async () => {
      const firstAnswer = postJob(narrow, first)
      await apiWaitsForLock()
      // the second waits for the one place; the lock goes with this function
      return { firstAnswer, secondAnswer: postJob(narrow, second) }
    })
    expect((await answers.firstAnswer).status).toBe(201)
    expect((await answers.secondAnswer).status).toBe(201)
    expect(await countMarked(first)).toBe(1)
    expect(await countMarked(second)).toBe(1)
  })

  it("a request that finds every place in the pool taken is answered 503 within API_DATABASE_ACQUIRE_TIMEOUT, having sent nothing", async () => {
    // one connection carrying one statement; the one request holding it waits up to 5 s on a lock
    const narrow = webHandler(api.db.url, {
      database: { maxConnections: 1, multiplex: 1, lockTimeout: "5 seconds" },
      databaseAcquireTimeout: "300 millis"
    })
    const [first, second] = [crypto.randomUUID(), crypto.randomUUID()]
    const { firstAnswer } = await whileHeld(jobsTable, async () => {
      const firstAnswer = postJob(narrow, first)
      // the first request's insert is on the server, waiting for the lock
      await apiWaitsForLock()
      const started = Date.now()
      const problem = await expectUnavailable(await postJob(narrow, second))
      expect(Date.now() - started).toBeLessThan(3000)
      expect(problem.detail).toContain("nothing was sent")
      return { firstAnswer }
    })
    expect((await firstAnswer).status).toBe(201)
    expect(await countMarked(first)).toBe(1)
    expect(await countMarked(second)).toBe(0)
  })
})

describe("once the job is committed, no answer says otherwise", () => {
  it("POST /jobs?wait= whose read after the wait is refused (a lock held past the API's wait) answers 202 with the job, not 503", async () => {
    const marker = crypto.randomUUID()
    const answer = api.request("/jobs?wait=1s", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(newJob(marker))
    })
    await waitFor("the job to be committed", async () =>
      (await countMarked(marker)) === 1 ? true : undefined
    )
    // held across the wait's end: the read after its timeout waits for the lock longer than the API does
    const response = await whileHeld(jobsTable, async () => {
      await Bun.sleep(1_500)
      return answer
    })
    expect(response.status).toBe(202)
    const body = await json(response)
    const [{ id }] = await admin`SELECT id::text FROM jobs WHERE payload->>'seed' = ${marker}`
    expect(body.id).toBe(id)
    expect(await countMarked(marker)).toBe(1)
  })
})
