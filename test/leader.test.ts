/**
 * One maintainer at a time, across real worker processes: exactly one holds the maintenance lease and
 * does the rescuing; when it is killed with SIGKILL another takes over within the lease and a third of it,
 * and rescues the dead one's jobs; a maintainer stopped with SIGTERM resigns, and another takes over within
 * a third of the lease.
 */
import { describe, expect, it } from "bun:test"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { Queue } from "../src/queue/Queue.ts"
import { kinds, recordLogTables } from "./fixtures/recordingKinds.ts"
import { exited, fleet, started, type WorkerProcess } from "./support/processes.ts"
import { setupQueueTests, waitFor } from "./support/runtime.ts"

const { db, run } = await setupQueueTests(import.meta.file, kinds)
await run(
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.forEach(recordLogTables, (statement) => sql.unsafe(statement).raw)
  )
)
const { spawn, stopAll } = fleet(db.url)

const sql = <A extends object>(f: (sql: SqlClient.SqlClient) => Effect.Effect<ReadonlyArray<A>, unknown>) =>
  run(Effect.flatMap(SqlClient.SqlClient, f) as Effect.Effect<ReadonlyArray<A>, never>)

const holder = async () =>
  (
    await sql<{ holder: string }>(
      (s) => s`SELECT holder FROM leaders WHERE role = 'maintenance' AND expires_at > now()`
    )
  )[0]?.holder

const log = (w: WorkerProcess) =>
  Bun.file(w.logFile)
    .text()
    .catch(() => "")
const electedIn = async (w: WorkerProcess) => (await log(w)).split(`${w.id} is the maintainer now`).length - 1

const leaseMs = 1_000
const quick = {
  WORKER_LEADER_LEASE: `${leaseMs} millis`,
  WORKER_LEASE: "1 second",
  WORKER_LEASE_RENEW: "200 millis",
  WORKER_RESCUE_INTERVAL: "200 millis"
}

describe("the elected maintainer", () => {
  it("is one worker at a time; killed with SIGKILL, another takes over within the lease and a third, and rescues", async () => {
    const three = ["m-a", "m-b", "m-c"].map((id) => spawn(id, { ...quick, WORKER_QUEUES: `q-${id}` }))
    await Promise.all(three.map((w) => started(w)))
    const first = await waitFor("a maintainer to be elected", holder)
    // for a few elections, it stays the only one
    for (let i = 0; i < 5; i++) {
      expect(await holder()).toBe(first)
      await Bun.sleep(leaseMs / 3)
    }
    const elected = await Promise.all(three.map(electedIn))
    expect(elected).toEqual(three.map((w) => (w.id === first ? 1 : 0)))

    // the maintainer holds a job of its own queue when it dies
    const leader = three.find((w) => w.id === first)!
    const [job] = await run(
      Queue.use((q) =>
        q.enqueueMany([{ kind: "record", payload: { sleepMs: 30_000, announce: true }, queue: `q-${first}` }])
      )
    )
    // running, and its start recorded (by a lease renewal), so the rescue counts the attempt: `retrying`
    await waitFor("the maintainer to run its job", async () =>
      (
        await sql<{ n: number }>(
          (s) =>
            s`SELECT count(*)::int AS n FROM started_log l JOIN jobs j ON j.id = l.job_id WHERE j.attempt_started`
        )
      )[0]!.n === 1
        ? true
        : undefined
    )
    leader.process.kill("SIGKILL")
    await exited(leader)
    const killedAt = performance.now()
    const next = await waitFor("another worker to take over", async () => {
      const h = await holder()
      return h !== undefined && h !== first ? h : undefined
    })
    const takeoverMs = performance.now() - killedAt
    // the bound: the dead maintainer's last renewal expires within the lease, and the others ask every third
    // of it (plus slack for a loaded machine)
    expect(takeoverMs).toBeLessThan(leaseMs * (4 / 3) + 1_000)
    const survivors = three.filter((w) => w !== leader)
    // the database names the new maintainer as it commits; its log line follows a moment later
    const successor = survivors.find((w) => w.id === next)!
    await waitFor("the new maintainer to log its election", async () =>
      (await electedIn(successor)) > 0 ? true : undefined
    )
    expect(await Promise.all(survivors.map(electedIn))).toEqual(survivors.map((w) => (w.id === next ? 1 : 0)))

    // and the new maintainer rescues the dead one's job (its lease expired), no one else does
    const rescued = await waitFor("the dead maintainer's job to be rescued", async () => {
      const j = await run(Queue.use((q) => q.get(job!.job.id)))
      return j.status === "retrying" ? j : undefined
    })
    expect(rescued.errors.at(-1)?.error).toContain(`lease expired: worker ${first}`)
    // as with the election: the rescue commits first, its log line follows a moment later
    await waitFor("the new maintainer to log its rescue", async () =>
      (await log(successor)).includes("rescued 1 jobs") ? true : undefined
    )
    const rescuers = await Promise.all(survivors.map(async (w) => (await log(w)).includes("rescued 1 jobs")))
    expect(rescuers).toEqual(survivors.map((w) => w.id === next))
    await stopAll()
  })

  it("stopped with SIGTERM, it resigns: another takes over within a third of the lease", async () => {
    // a long lease: only the resignation can explain a quick takeover
    const env = { WORKER_LEADER_LEASE: "6 seconds", WORKER_QUEUES: "resigning" }
    const two = [spawn("r-a", env), spawn("r-b", env)]
    await Promise.all(two.map((w) => started(w)))
    const first = await waitFor("a maintainer to be elected", holder)
    const leader = two.find((w) => w.id === first)!
    leader.process.kill("SIGTERM")
    await exited(leader)
    const stoppedAt = performance.now()
    const next = await waitFor(
      "the other worker to take over",
      async () => {
        const h = await holder()
        return h !== undefined && h !== first ? h : undefined
      },
      { timeoutMs: 4_000 }
    )
    expect(next).toBe(two.find((w) => w !== leader)!.id)
    expect(performance.now() - stoppedAt).toBeLessThan(2_000 + 1_000)
    expect(await log(leader)).toContain(`${first} resigned as the maintainer`)
    await stopAll()
  })
})
