/**
 * postgres_restart: the database server stops with jobs in flight and starts again. The API must answer
 * 503 (never 500, never hang) while it is down and accept again without a restart; the workers must
 * reconnect and finish every job, and LISTEN again: they poll once a minute, and a job enqueued on the
 * drained queue after the last restart must be done within seconds. postgres_crash: the server is killed (immediate
 * shutdown: no checkpoint, unflushed WAL gone) while workers claim and complete; nothing may be lost, and
 * a job may run again only if its claim was among the unflushed (docs/architecture.md, delivery guarantee,
 * case 5). The server is a private cluster (faults.ts), so stopping it disturbs nobody else on this machine.
 */
import { describe, expect, it } from "bun:test"
import { waitFor } from "../support/runtime.ts"
import { privateCluster } from "./faults.ts"
import { expectNothingLost, jitter, setupChaos, summary, tally } from "./harness.ts"
import { type Answer, call, enqueueReliably, isUnavailable } from "./http.ts"
import { pick, profile, report } from "./profile.ts"

const cluster = await privateCluster()
const chaos = await setupChaos(import.meta.file, cluster.database)
const timeout = pick(120_000, 900_000)

describe(`chaos (${profile}): the database server restarts`, () => {
  it(
    "postgres_restart: the API answers 503 while the server is down and recovers; workers reconnect",
    async () => {
      const queue = "postgres_restart"
      const env = { DATABASE_CONNECT_TIMEOUT: "2 seconds" }
      const api = await chaos.api(env)
      // polling once a minute: the quick pickup checked at the end can only come by notification
      const workerEnv = {
        ...env,
        WORKER_QUEUES: queue,
        WORKER_CONCURRENCY: "8",
        WORKER_POLL_INTERVAL: "1 minute"
      }
      const workers = [chaos.worker("restart-a", workerEnv), chaos.worker("restart-b", workerEnv)]
      const restarts = pick(1, 4)
      const listeningAgain = () =>
        waitFor(
          "both workers to LISTEN on both channels again",
          async () => {
            const [{ n }] = await chaos.pg`
              SELECT count(*)::int AS n FROM pg_stat_activity
              WHERE datname = ${chaos.db.name} AND application_name = 'jobq-worker' AND query LIKE 'LISTEN%'`
            return n === 4 ? true : undefined
          },
          { timeoutMs: 15_000 }
        )
      const ids = await chaos.enqueue(queue, pick(150, 2000), jitter(50, 300))
      const whileDown: Array<{ request: string; answer: Answer }> = []
      const seen = new Map<number, number>()
      const downs: Array<number> = []
      const apiRecoveries: Array<number> = []
      const workerRecoveries: Array<number> = []
      for (let r = 0; r < restarts; r++) {
        await chaos.progressed(queue, await chaos.succeededCount(queue), 10, 60_000)
        const { downMs } = await cluster.withServerStopped(async () => {
          const probes: Array<[string, string, unknown?]> = [
            ["GET", "/health"],
            ["POST", "/jobs", { kind: "record", payload: { sleepMs: 1 }, queue }],
            ["GET", `/jobs/${ids[0]}`],
            ["GET", `/jobs?queue=${queue}`],
            ["POST", `/jobs/${ids.at(-1)}/cancel`]
          ]
          for (const [method, path, body] of probes) {
            whileDown.push({ request: `${method} ${path}`, answer: await call(api.url, method, path, body) })
          }
        })
        downs.push(downMs)
        const upAt = Date.now()
        const before = await chaos.succeededCount(queue)
        const id = await enqueueReliably(
          api.url,
          { kind: "record", payload: { sleepMs: 10 }, queue },
          `restart-${r}`,
          60_000,
          seen
        )
        expect(id).toBeString()
        ids.push(id!)
        apiRecoveries.push(Date.now() - upAt)
        await chaos.progressed(queue, before, 1, 60_000)
        workerRecoveries.push(Date.now() - upAt)
        await listeningAgain()
      }
      // after the last restart the same API process keeps accepting, the same workers keep working
      const more = pick(20, 200)
      for (let i = 0; i < more; i++) {
        const id = await enqueueReliably(
          api.url,
          { kind: "record", payload: { sleepMs: 10 }, queue },
          `after-${i}`,
          30_000,
          seen
        )
        expect(id).toBeString()
        ids.push(id!)
      }
      const drainMs = await chaos.drained(queue, pick(60_000, 600_000))
      // a job on the drained queue is picked up by NOTIFY
      const drainedCount = await chaos.succeededCount(queue)
      ids.push(...(await chaos.enqueue(queue, 1, () => ({ sleepMs: 1 }))))
      const notifiedPickupMs = await chaos.progressed(queue, drainedCount, 1, 5_000)
      const verdict = await chaos.verdict(ids)
      const alive = [api, ...workers].filter((p) => p.process.exitCode === null).length
      report("chaos", {
        scenario: "postgres_restart",
        injected: `${restarts} x pg_ctlcluster stop --mode fast of a private cluster, requests while down, start; API + 2 workers (concurrency 8)`,
        ...summary(verdict),
        downMs: Math.max(...downs),
        whileDown: whileDown.map((p) => `${p.request.split("/")[1]?.split("?")[0]}:${p.answer.status}`),
        afterRestart: tally(seen),
        recoveryMs: Math.max(...apiRecoveries),
        workerRecoveryMs: Math.max(...workerRecoveries),
        notifiedPickupMs,
        drainMs
      })
      for (const probe of whileDown) {
        expect({ request: probe.request, status: probe.answer.status }).toEqual({
          request: probe.request,
          status: 503
        })
        expect(isUnavailable(probe.answer)).toBe(true)
      }
      expect(alive).toBe(3)
      expectNothingLost(verdict)
      await Promise.all(workers.map((w) => chaos.stop(w, "SIGTERM")))
      await chaos.stop(api, "SIGTERM")
      expect(await chaos.running(queue)).toBe(0)
    },
    timeout
  )

  it(
    "postgres_crash: the server is killed mid-flight and comes back; no job is lost, none left running",
    async () => {
      const queue = "postgres_crash"
      const env = { DATABASE_CONNECT_TIMEOUT: "2 seconds" }
      const workerEnv = { ...env, WORKER_QUEUES: queue, WORKER_CONCURRENCY: "8" }
      const workers = [chaos.worker("crash-a", workerEnv), chaos.worker("crash-b", workerEnv)]
      const crashes = pick(1, 3)
      // short jobs: claims and completions are committing all the time when the server dies. Each crash
      // gets a backlog of its own: two workers drain one in a few seconds, and a crash after the last job
      // finished would wait for progress that cannot come (and would test nothing)
      const ids: Array<string> = []
      const unfinishedAtCrash: Array<number> = []
      for (let c = 0; c < crashes; c++) {
        ids.push(...(await chaos.enqueue(queue, pick(600, 1500), jitter(1, 20))))
        await chaos.progressed(queue, await chaos.succeededCount(queue), 20, 60_000)
        unfinishedAtCrash.push(ids.length - (await chaos.succeededCount(queue)))
        await cluster.withServerStopped(async () => undefined, "immediate")
        await chaos.progressed(queue, await chaos.succeededCount(queue), 1, 60_000)
      }
      const drainMs = await chaos.drained(queue, pick(90_000, 600_000))
      const verdict = await chaos.verdict(ids)
      report("chaos", {
        scenario: "postgres_crash",
        injected: `${crashes} x pg_ctlcluster stop --mode immediate of a private cluster while 2 workers (concurrency 8) drain short jobs, start`,
        ...summary(verdict),
        // runs beyond what lease losses explain: a claim lost with the unflushed WAL
        unexplainedRuns: verdict.violations.length,
        unfinishedAtCrash,
        drainMs
      })
      // every crash came mid-flight, with work left to claim and complete
      for (const unfinished of unfinishedAtCrash) expect(unfinished).toBeGreaterThan(100)
      expect(verdict.lost).toEqual([])
      expect(verdict.notTerminal).toEqual([])
      expect(verdict.byStatus).toEqual({ succeeded: verdict.jobs })
      // a job re-run after a lost claim has more runs than its claims explain, which a crash allows; a job
      // that succeeded without ever finishing a run does not
      expect(verdict.violations.filter((v) => v.why.includes("succeeded without a finished run"))).toEqual([])
      await Promise.all(workers.map((w) => chaos.stop(w, "SIGTERM")))
      expect(await chaos.running(queue)).toBe(0)
    },
    timeout
  )
})
