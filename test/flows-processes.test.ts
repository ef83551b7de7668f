/**
 * Flows across real worker processes, checked on the database's record: a 1,000-job fan-out/fan-in run by
 * three workers (every job succeeded exactly once, the fan-in ran last and saw every parent's result), and
 * a flow whose worker is killed mid-run (the rescuer gives the job to another worker and the flow ends).
 */
import { describe, expect, it } from "bun:test"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { Queue } from "../src/queue/Queue.ts"
import { flowLogTables, kinds } from "./fixtures/recordingKinds.ts"
import { fleet, started } from "./support/processes.ts"
import { setupQueueTests, waitFor } from "./support/runtime.ts"

const { db, run } = await setupQueueTests(import.meta.file, kinds)
for (const table of flowLogTables) await run(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(table)))
const { spawn, stopAll } = fleet(db.url)
const sql = <A extends object>(f: (sql: SqlClient.SqlClient) => Effect.Effect<ReadonlyArray<A>, unknown>) =>
  run(Effect.flatMap(SqlClient.SqlClient, f) as Effect.Effect<ReadonlyArray<A>, never>)
const flowStatus = async (id: string) => (await run(Queue.use((q) => q.getFlow(id)))).status

describe("flows across worker processes", () => {
  it("fan-out/fan-in of 1,000 jobs over 3 workers: each job succeeds once, the fan-in last, with all 998 results", async () => {
    const queue = "fan"
    // a fixed, small claim buffer: with the adaptive default one worker may claim all 998 one-millisecond
    // leaves at once, and this test is about three workers contending for one flow's jobs
    const env = { WORKER_QUEUES: queue, WORKER_CONCURRENCY: "8", WORKER_PREFETCH: "16" }
    const three = [spawn("fan-a", env), spawn("fan-b", env), spawn("fan-c", env)]
    await Promise.all(three.map((w) => started(w)))
    const step = (name: string, dependsOn: Array<string> = []) => ({
      name,
      kind: "flowStep",
      payload: { name, sleepMs: 1 },
      queue,
      dependsOn
    })
    const leaves = Array.from({ length: 998 }, (_, i) => `leaf-${i}`)
    const flow = await run(
      Queue.use((q) =>
        q.enqueueFlow({
          jobs: [step("root"), ...leaves.map((leaf) => step(leaf, ["root"])), step("fan-in", leaves)]
        })
      )
    )
    expect(flow.jobs.length).toBe(1000)
    await waitFor(
      "the flow to finish",
      async () => ((await flowStatus(flow.id)) === "active" ? undefined : true),
      {
        timeoutMs: 60_000,
        intervalMs: 200
      }
    )
    expect(await flowStatus(flow.id)).toBe("succeeded")
    // the record: one run per job, by the job itself, and every job succeeded
    const [counts] = await sql<{ runs: number; jobs: number; succeeded: number; workers: number }>(
      (s) => s`
        SELECT (SELECT count(*)::int FROM flow_log) AS runs,
               (SELECT count(DISTINCT job_id)::int FROM flow_log) AS jobs,
               (SELECT count(*)::int FROM jobs WHERE flow_id = ${flow.id} AND status = 'succeeded') AS succeeded,
               (SELECT count(DISTINCT worker)::int FROM flow_log) AS workers`
    )
    expect(counts).toEqual({ runs: 1000, jobs: 1000, succeeded: 1000, workers: 3 })
    // root first; fan-in started after every other job had ended
    const [order] = await sql<{ rootLast: Date; leavesFirst: Date; leavesLast: Date; fanInStart: Date }>(
      (s) => s`
        SELECT (SELECT max(ended_at) FROM flow_log WHERE name = 'root') AS "rootLast",
               (SELECT min(at) FROM flow_started WHERE name LIKE 'leaf-%') AS "leavesFirst",
               (SELECT max(ended_at) FROM flow_log WHERE name LIKE 'leaf-%') AS "leavesLast",
               (SELECT min(at) FROM flow_started WHERE name = 'fan-in') AS "fanInStart"`
    )
    expect(order!.leavesFirst.getTime()).toBeGreaterThanOrEqual(order!.rootLast.getTime())
    expect(order!.fanInStart.getTime()).toBeGreaterThanOrEqual(order!.leavesLast.getTime())
    const [fanIn] = await sql<{ parents: Record<string, { name: string }> }>(
      (s) => s`SELECT parents FROM flow_log WHERE name = 'fan-in'`
    )
    expect(Object.keys(fanIn!.parents).length).toBe(998)
    expect(Object.entries(fanIn!.parents).every(([name, result]) => result.name === name)).toBe(true)
    await stopAll()
  }, 90_000)

  it("a complete bipartite flow (40 x 300, 12,000 edges) over 3 workers: no deadlock, each child after all parents", async () => {
    const queue = "bipartite"
    const deadlocks = async () =>
      (
        await sql<{ n: number }>(
          (s) => s`SELECT deadlocks::int AS n FROM pg_stat_database WHERE datname = current_database()`
        )
      )[0]!.n
    const before = await deadlocks()
    // no prefetch, few slots: the parents spread over the three workers, whose completions then overlap
    const env = { WORKER_QUEUES: queue, WORKER_CONCURRENCY: "4", WORKER_PREFETCH: "0" }
    const three = [spawn("bi-a", env), spawn("bi-b", env), spawn("bi-c", env)]
    await Promise.all(three.map((w) => started(w)))
    const parents = Array.from({ length: 40 }, (_, i) => `parent-${i}`)
    const step = (name: string, dependsOn: Array<string> = []) => ({
      name,
      kind: "flowStep",
      payload: { name, sleepMs: 1 },
      queue,
      dependsOn
    })
    // every completion batch locks the same 300 children: in id order, or the batches would deadlock
    const flow = await run(
      Queue.use((q) =>
        q.enqueueFlow({
          jobs: [
            ...parents.map((p) => step(p)),
            ...Array.from({ length: 300 }, (_, i) => step(`child-${i}`, parents))
          ]
        })
      )
    )
    await waitFor(
      "the flow to finish",
      async () => ((await flowStatus(flow.id)) === "active" ? undefined : true),
      {
        timeoutMs: 60_000,
        intervalMs: 200
      }
    )
    expect(await flowStatus(flow.id)).toBe("succeeded")
    await stopAll()
    const [order] = await sql<{ runs: number; lastParent: Date; firstChild: Date; fullParents: number }>(
      (s) => s`
        SELECT (SELECT count(*)::int FROM flow_log WHERE name LIKE 'parent-%' OR name LIKE 'child-%') AS runs,
               (SELECT max(ended_at) FROM flow_log WHERE name LIKE 'parent-%') AS "lastParent",
               (SELECT min(at) FROM flow_started WHERE name LIKE 'child-%') AS "firstChild",
               (SELECT count(*)::int FROM flow_log
                WHERE name LIKE 'child-%' AND (SELECT count(*) FROM jsonb_object_keys(parents)) = 40) AS "fullParents"`
    )
    expect(order!.runs).toBe(340)
    expect(order!.firstChild.getTime()).toBeGreaterThanOrEqual(order!.lastParent.getTime())
    expect(order!.fullParents).toBe(300)
    // the workers have exited, so their sessions' statistics are flushed
    expect(await deadlocks()).toBe(before)
  }, 90_000)

  it("a flow whose worker is killed mid-run still completes: the rescuer hands the job to another worker", async () => {
    const queue = "killed"
    const env = {
      WORKER_QUEUES: queue,
      WORKER_LEASE: "2 seconds",
      WORKER_LEASE_RENEW: "300 millis",
      WORKER_LEADER_LEASE: "2 seconds",
      WORKER_RESCUE_INTERVAL: "300 millis"
    }
    const doomed = spawn("killed-a", env)
    await started(doomed)
    const step = (name: string, sleepMs: number, dependsOn: Array<string> = []) => ({
      name,
      kind: "flowStep",
      payload: { name, sleepMs },
      queue,
      dependsOn
    })
    const flow = await run(
      Queue.use((q) => q.enqueueFlow({ jobs: [step("a", 1), step("b", 1500, ["a"]), step("c", 1, ["b"])] }))
    )
    await waitFor("b to start on the doomed worker", async () => {
      const rows = await sql<{ n: number }>(
        (s) => s`SELECT count(*)::int AS n FROM flow_started WHERE name = 'b'`
      )
      return rows[0]!.n > 0 ? true : undefined
    })
    // its start is recorded with the next renewal: let one pass, then kill the worker without a word
    await Bun.sleep(500)
    doomed.process.kill("SIGKILL")
    await doomed.process.exited
    const rescuer = spawn("killed-b", env)
    await started(rescuer)
    await waitFor(
      "the flow to finish",
      async () => ((await flowStatus(flow.id)) === "active" ? undefined : true),
      {
        timeoutMs: 20_000,
        intervalMs: 100
      }
    )
    expect(await flowStatus(flow.id)).toBe("succeeded")
    const runs = await sql<{ name: string; worker: string }>(
      (s) => s`SELECT name, worker FROM flow_log ORDER BY ended_at`
    )
    const ofFlow = runs.filter((r) => ["a", "b", "c"].includes(r.name))
    expect(ofFlow.map((r) => r.name)).toEqual(["a", "b", "c"])
    expect(ofFlow.find((r) => r.name === "b")!.worker).toBe("killed-b")
    const [b] = await sql<{ attempts: number; starts: number }>(
      (s) => s`
        SELECT j.attempts, (SELECT count(*)::int FROM flow_started WHERE job_id = j.id) AS starts
        FROM jobs j WHERE j.flow_id = ${flow.id} AND j.flow_name = 'b'`
    )
    expect(b).toEqual({ attempts: 2, starts: 2 })
    await stopAll()
  }, 60_000)
})
