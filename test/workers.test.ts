/**
 * The registry of live workers: real worker processes heartbeat into `workers`; the listing shows each
 * with its host, pid, queues, concurrency and the jobs it holds; one killed with SIGKILL leaves the list
 * after three missed heartbeats, one stopped with SIGTERM at once after it drained.
 */
import { describe, expect, it } from "bun:test"
import { hostname } from "node:os"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { Queue } from "../src/queue/Queue.ts"
import { kinds, recordLogTables } from "./fixtures/recordingKinds.ts"
import { exited, fleet, started } from "./support/processes.ts"
import { setupQueueTests, waitFor } from "./support/runtime.ts"

const { db, run } = await setupQueueTests(import.meta.file, kinds)
await run(
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.forEach(recordLogTables, (statement) => sql.unsafe(statement).raw)
  )
)
const { spawn } = fleet(db.url)
const listed = () => run(Queue.use((q) => q.listWorkers))

describe("GET /workers: live worker processes", () => {
  it("lists each worker with what it serves and holds; SIGKILL leaves after 3 heartbeats, SIGTERM at once", async () => {
    const beat = { WORKER_HEARTBEAT: "200 millis" }
    const a = spawn("listed-a", {
      ...beat,
      WORKER_QUEUES: "wa",
      WORKER_CONCURRENCY: "3",
      WORKER_PREFETCH: "0"
    })
    const b = spawn("listed-b", { ...beat, WORKER_QUEUES: "wb,wc", WORKER_CONCURRENCY: "7" })
    await Promise.all([started(a), started(b)])
    const both = await listed()
    expect(both.map((w) => [w.id, w.host, w.pid, w.queues, w.concurrency])).toEqual([
      ["listed-a", hostname(), a.process.pid, ["wa"], 3],
      ["listed-b", hostname(), b.process.pid, ["wb", "wc"], 7]
    ])
    for (const w of both) expect(w.expiresAt.getTime()).toBeGreaterThan(w.lastHeartbeatAt.getTime())

    // what a worker holds is counted when asked
    await run(
      Queue.use((q) =>
        q.enqueueMany(
          Array.from({ length: 3 }, () => ({ kind: "record", payload: { sleepMs: 1500 }, queue: "wa" }))
        )
      )
    )
    await waitFor("worker a to hold its three jobs", async () => {
      const found = (await listed()).find((w) => w.id === "listed-a")
      return found?.running === 3 ? true : undefined
    })

    // heartbeats move on
    const before = (await listed()).find((w) => w.id === "listed-b")!.lastHeartbeatAt
    await waitFor("worker b to heartbeat again", async () => {
      const now = (await listed()).find((w) => w.id === "listed-b")?.lastHeartbeatAt
      return now !== undefined && now > before ? true : undefined
    })

    b.process.kill("SIGKILL")
    await exited(b)
    const killedAt = Date.now()
    await waitFor(
      "the killed worker to leave the list",
      async () => ((await listed()).some((w) => w.id === "listed-b") ? undefined : true),
      { timeoutMs: 3_000 }
    )
    // not before its three heartbeats ran out (give or take one interval)
    expect(Date.now() - killedAt).toBeGreaterThan(200)

    a.process.kill("SIGTERM")
    await exited(a)
    expect((await listed()).map((w) => w.id)).toEqual([])
  })
})
