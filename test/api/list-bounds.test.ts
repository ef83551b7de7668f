/**
 * `GET /jobs` pages are bounded by bytes as well as by count: 500 jobs of large payloads made a 157 MB
 * answer and pushed the API to 451 MiB. A page ends once its payloads, results and errors pass
 * `maxPageBytes`; it always has one job; `nextCursor` goes on from where it ended.
 */
import { describe, expect, it } from "bun:test"
import { SQL } from "bun"
import { maxPageBytes } from "../../src/queue/Queue.ts"
import { json, setupApiTests } from "../support/api.ts"

const api = await setupApiTests(import.meta.file)
const sql = new SQL({ url: api.db.url, max: 1 })

const mib = 1024 * 1024

/** `count` jobs in `queue`, each with a payload of about `bytes` bytes, made by the database itself. */
const bigJobs = async (queue: string, count: number, bytes: number) => {
  await sql`
    INSERT INTO jobs (queue, kind, payload)
    SELECT ${queue}, 'noop', jsonb_build_object('blob', repeat(md5(g::text), ${Math.ceil(bytes / 32)}))
    FROM generate_series(1, ${count}) g`
  const rows: Array<{ id: string }> = await sql`SELECT id FROM jobs WHERE queue = ${queue} ORDER BY id`
  return rows.map((r) => r.id)
}

/** Every page of `GET /jobs?queue=...&limit=...`, with the size of each answer. */
const allPages = async (queue: string, limit: number) => {
  const pages: Array<{ ids: Array<string>; bytes: number }> = []
  let cursor: string | null = null
  do {
    const response = await api.request(
      `/jobs?queue=${queue}&limit=${limit}${cursor === null ? "" : `&cursor=${cursor}`}`
    )
    expect(response.status).toBe(200)
    const text = await response.text()
    const page = JSON.parse(text) as { jobs: Array<{ id: string }>; nextCursor: string | null }
    pages.push({ ids: page.jobs.map((j) => j.id), bytes: text.length })
    cursor = page.nextCursor
  } while (cursor !== null && pages.length <= 1000)
  return pages
}

describe("GET /jobs over large payloads", () => {
  it("ends a page at about maxPageBytes, whatever limit asks for, and the cursor walks every job once", async () => {
    const ids = await bigJobs("large-payloads", 60, mib)
    const pages = await allPages("large-payloads", 500)
    expect(pages.length).toBeGreaterThan(1)
    for (const page of pages) {
      expect(page.ids.length).toBeGreaterThanOrEqual(1)
      // the budget, plus the job that passed it, plus the rest of each job's fields
      expect(page.bytes).toBeLessThan(maxPageBytes + mib + 64 * 1024)
    }
    expect(pages.flatMap((p) => p.ids)).toEqual(ids)
  })

  it("keeps the API's memory bounded while 200 MiB of payloads are listed", async () => {
    await bigJobs("memory", 200, mib)
    Bun.gc(true)
    const before = process.memoryUsage.rss()
    const response = await api.request("/jobs?queue=memory&limit=500")
    const page = (await json(response)) as { jobs: Array<unknown>; nextCursor: string | null }
    const grown = process.memoryUsage.rss() - before
    expect(page.jobs.length).toBeLessThan(200)
    expect(page.nextCursor).not.toBeNull()
    expect(grown).toBeLessThan(96 * mib)
  })

  it("always returns one job, even one larger than the budget, and goes on after it", async () => {
    const ids = await bigJobs("one-at-a-time", 2, maxPageBytes + mib)
    const pages = await allPages("one-at-a-time", 50)
    expect(pages.map((p) => p.ids)).toEqual([[ids[0]!], [ids[1]!]])
  })
})
