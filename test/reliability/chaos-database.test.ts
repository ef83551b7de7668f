/**
 * Chaos in the database: sessions are terminated again and again, the connection pools are exhausted, a
 * transaction stays open and pins vacuum. The API and the workers are real processes on the server behind
 * TEST_DATABASE_URL. (postgres_restart, which stops a server, is in chaos-restart.test.ts.)
 */
import { describe, expect, it } from "bun:test"
import { SqlError } from "effect/sql"
import { toUnavailable } from "../../src/http/DatabaseErrors.ts"
import { waitFor } from "../support/runtime.ts"
import { deadTuples, terminateBackends } from "./faults.ts"
import { expectNothingLost, jitter, setupChaos, summary, tally } from "./harness.ts"
import { type Answer, call, enqueueReliably, isUnavailable } from "./http.ts"
import { pick, profile, report } from "./profile.ts"

const chaos = await setupChaos(import.meta.file)
const timeout = pick(120_000, 900_000)

describe(`chaos (${profile}): the database`, () => {
  it(
    "backend_kill: pg_terminate_backend the API's and the workers' sessions again and again",
    async () => {
      const queue = "backend_kill"
      const api = await chaos.api()
      const workerEnv = { WORKER_QUEUES: queue, WORKER_CONCURRENCY: "8" }
      const workers = [chaos.worker("bk-a", workerEnv), chaos.worker("bk-b", workerEnv)]
      const ids = await chaos.enqueue(queue, pick(100, 1000), jitter(20, 200))
      const runFor = pick(6_000, 60_000)
      const until = Date.now() + runFor
      let killed = 0
      let rounds = 0
      const killer = (async () => {
        while (Date.now() < until) {
          killed += await terminateBackends(chaos.pg, chaos.db.name, ["jobq-api", "jobq-worker"])
          rounds++
          await Bun.sleep(300)
        }
      })()
      const seen = new Map<number, number>()
      const reads = new Map<number, number>()
      const accepted: Array<string> = []
      const failedKeys: Array<string> = []
      const client = async (c: number) => {
        for (let i = 0; Date.now() < until; i++) {
          const key = `bk-${c}-${i}`
          const payload = { kind: "record", payload: { sleepMs: 20 }, queue }
          const id = await enqueueReliably(api.url, payload, key, 30_000, seen)
          if (id === undefined) failedKeys.push(key)
          else {
            accepted.push(id)
            const read = await call(api.url, "GET", `/jobs/${id}`)
            reads.set(read.status, (reads.get(read.status) ?? 0) + 1)
          }
        }
      }
      await Promise.all([killer, ...[0, 1, 2, 3].map(client)])
      const recoveredAt = Date.now()
      const before = await chaos.succeededCount(queue)
      await chaos.progressed(queue, before, 1, 60_000).catch(() => 0)
      const recoveryMs = Date.now() - recoveredAt
      const drainMs = await chaos.drained(queue, pick(60_000, 600_000))
      const all = [...ids, ...accepted]
      const verdict = await chaos.verdict(all)
      const [{ rows }] = await chaos.pg`SELECT count(*)::int AS rows FROM jobs WHERE queue = ${queue}`
      report("chaos", {
        scenario: "backend_kill",
        injected: `${killed} sessions terminated in ${rounds} rounds over ${runFor / 1000} s (every 300 ms); 4 API clients enqueueing with idempotency keys`,
        ...summary(verdict),
        enqueueAnswers: tally(seen),
        readAnswers: tally(reads),
        recoveryMs,
        drainMs
      })
      expect(killed).toBeGreaterThan(0)
      expect(failedKeys).toEqual([])
      expect([...seen.keys()].filter((s) => ![200, 201, 503].includes(s))).toEqual([])
      expect([...reads.keys()].filter((s) => ![200, 503].includes(s))).toEqual([])
      // the database holds exactly the jobs that were accepted: a retried key never made a second job
      expect(rows).toBe(new Set(all).size)
      expect([api, ...workers].filter((p) => p.process.exitCode !== null)).toEqual([])
      expectNothingLost(verdict)
      await Promise.all(workers.map((w) => chaos.stop(w, "SIGTERM")))
      await chaos.stop(api, "SIGTERM")
      expect(await chaos.running(queue)).toBe(0)
    },
    timeout
  )

  it(
    "pool_exhaustion: more concurrent work than connections; nothing hangs, waits end in a clear 503, throughput recovers",
    async () => {
      const queue = "pool_exhaustion"
      const env = { DATABASE_POOL_MAX: "2" }
      // 4 statements pipelined per connection (the API's default is 32), so that a few blocked cancels fill
      // every place of the pool: 2 connections x 4
      const multiplex = 4
      const api = await chaos.api({ ...env, DATABASE_MULTIPLEX: String(multiplex) })
      const worker = chaos.worker("pool-w", { ...env, WORKER_QUEUES: queue, WORKER_CONCURRENCY: "16" })
      const ids = await chaos.enqueue(queue, pick(200, 3000), jitter(5, 50))
      // 1. 48 concurrent requests on 2 connections: they queue for the pool and all finish
      const burst = async (n: number) =>
        Promise.all(
          Array.from({ length: n }, (_, i) =>
            i % 3 === 0
              ? call(api.url, "POST", "/jobs", { kind: "record", payload: { sleepMs: 5 }, queue })
              : i % 3 === 1
                ? call(api.url, "GET", `/jobs?queue=${queue}&limit=20`)
                : call(api.url, "GET", `/jobs/${ids[i]}`)
          )
        )
      const first = await burst(pick(48, 300))
      // 2. another session holds a row lock: cancels of that job take every place of the pool and block on it
      // on both API connections; reads come after them. Nothing may hang: Postgres ends each blocked cancel at
      // the API's lock timeout (DATABASE_LOCK_TIMEOUT, 1 s), a 503 that names the lock, and each read either
      // runs once a place frees (200) or gives up waiting for one (503, nothing sent)
      const [held] = await chaos.enqueue("pool_exhaustion_held", 1, () => ({ sleepMs: 1 }))
      const holder = await chaos.pg.reserve()
      await holder`BEGIN`
      await holder`SELECT id FROM jobs WHERE id = ${held} FOR UPDATE`
      let blocked: Array<Answer> = []
      let starved: Array<Answer> = []
      const heldFor = Date.now()
      try {
        const cancels = Promise.all(
          Array.from({ length: 2 * multiplex }, () =>
            call(api.url, "POST", `/jobs/${held}/cancel`, undefined, {}, 30_000)
          )
        )
        await waitFor(
          "a cancel blocked on the row lock on each of the API's 2 connections",
          async () => {
            const [{ waiting }] = await chaos.pg`
              SELECT count(*)::int AS waiting FROM pg_stat_activity
              WHERE datname = ${chaos.db.name} AND application_name = 'jobq-api' AND wait_event_type = 'Lock'`
            return waiting === 2 ? true : undefined
          },
          { timeoutMs: 5_000 }
        )
        const reads = Promise.all(
          Array.from({ length: 6 }, (_, i) =>
            call(
              api.url,
              "GET",
              i % 2 === 0 ? `/jobs/${ids[i]}` : `/jobs?queue=${queue}`,
              undefined,
              {},
              30_000
            )
          )
        )
        ;[blocked, starved] = await Promise.all([cancels, reads])
      } finally {
        await holder`ROLLBACK`
        holder.release()
      }
      const heldMs = Date.now() - heldFor
      // 3. throughput recovers
      const recoveredAt = Date.now()
      const after = await burst(pick(48, 300))
      const recoveryMs = Date.now() - recoveredAt
      const accepted = [...first, ...after].filter((a) => a.status === 201).map((a) => a.body.id as string)
      const drainMs = await chaos.drained(queue, pick(60_000, 600_000))
      const verdict = await chaos.verdict([...ids, ...accepted])
      const statuses = (answers: ReadonlyArray<Answer>) => {
        const counts = new Map<number, number>()
        for (const a of answers) counts.set(a.status, (counts.get(a.status) ?? 0) + 1)
        return tally(counts)
      }
      report("chaos", {
        scenario: "pool_exhaustion",
        injected: `API and worker with DATABASE_POOL_MAX=2; worker concurrency 16; bursts of ${first.length} requests; ${blocked.length} cancels blocked on a row lock on both API connections (and 6 reads behind them) for ${heldMs} ms`,
        ...summary(verdict),
        burst: statuses(first),
        cancelsOnLockedRow: statuses(blocked),
        readsWaitingForPool: statuses(starved),
        longestWaitMs: Math.round(Math.max(...[...blocked, ...starved].map((a) => a.ms))),
        blockedDetail: blocked[0]?.body?.detail,
        afterBurst: statuses(after),
        recoveryMs,
        drainMs
      })
      expect([...first, ...after].filter((a) => a.status !== 200 && a.status !== 201)).toEqual([])
      // a cancel cannot finish while the row stays locked: each must end as the lock timeout's 503
      for (const answer of blocked) {
        expect(isUnavailable(answer)).toBe(true)
        expect(answer.body.detail).toContain("lock")
      }
      expect(starved.length).toBe(6)
      for (const answer of starved) expect(answer.status === 200 || isUnavailable(answer)).toBe(true)
      expect(Math.max(...[...blocked, ...starved].map((a) => a.ms))).toBeLessThan(20_000)
      expectNothingLost(verdict)
      expect(worker.process.exitCode).toBeNull()
      await chaos.stop(worker, "SIGTERM")
      await chaos.stop(api, "SIGTERM")
    },
    timeout
  )

  it(
    "idle_in_transaction: a session pins vacuum for a while; throughput degrades gracefully and recovers",
    async () => {
      const queue = "idle_in_transaction"
      const worker = chaos.worker("idle-w", { WORKER_QUEUES: queue, WORKER_CONCURRENCY: "8" })
      const batch = pick(300, 3000)
      const phase = async (label: string) => {
        const began = Date.now()
        const ids = await chaos.enqueue(queue, batch, () => ({ sleepMs: 0 }))
        await chaos.drained(queue, pick(60_000, 600_000))
        const ms = Date.now() - began
        return { label, ids, ms, jobsPerSecond: Math.round((batch / ms) * 1000) }
      }
      await phase("warm-up")
      await chaos.pg`VACUUM jobs`
      const baseline = await phase("before")
      const deadBefore = await deadTuples(chaos.pg)
      const holder = await chaos.pg.reserve()
      const holdMs = pick(4_000, 60_000)
      let during: Awaited<ReturnType<typeof phase>>
      let deadDuring: Awaited<ReturnType<typeof deadTuples>>
      const rounds: Array<number> = []
      const heldAt = Date.now()
      try {
        // a snapshot that stays open: vacuum may remove no row version deleted after it
        await holder`BEGIN ISOLATION LEVEL REPEATABLE READ`
        await holder`SELECT count(*) FROM jobs`
        during = await phase("during")
        rounds.push(during.jobsPerSecond)
        for (let round = 0; Date.now() - heldAt < holdMs; round++) {
          rounds.push((await phase(`during-${round}`)).jobsPerSecond)
        }
        await chaos.pg`VACUUM jobs`
        deadDuring = await deadTuples(chaos.pg)
      } finally {
        await holder`ROLLBACK`
        holder.release()
      }
      await chaos.pg`VACUUM jobs`
      const deadAfter = await deadTuples(chaos.pg)
      const recovered = await phase("after")
      const ids = [...baseline.ids, ...during.ids, ...recovered.ids]
      const verdict = await chaos.verdict(ids)
      report("chaos", {
        scenario: "idle_in_transaction",
        injected: `REPEATABLE READ transaction idle for ${Math.round((Date.now() - heldAt) / 1000)} s while ${rounds.length} batches of ${batch} jobs ran; worker concurrency 8`,
        ...summary(verdict),
        jobsPerSecond: {
          before: baseline.jobsPerSecond,
          duringFirst: during.jobsPerSecond,
          duringLast: rounds.at(-1),
          duringMin: Math.min(...rounds),
          after: recovered.jobsPerSecond
        },
        deadTuples: {
          before: deadBefore.dead,
          duringAfterVacuum: deadDuring.dead,
          afterVacuum: deadAfter.dead
        },
        liveTuples: deadAfter.live,
        recoveryMs: recovered.ms,
        drainMs: recovered.ms
      })
      expectNothingLost(verdict)
      // pinned: vacuum left the dead versions; released: vacuum removed them
      expect(deadDuring.dead).toBeGreaterThan(deadBefore.dead)
      expect(deadAfter.dead).toBeLessThan(deadDuring.dead)
      expect(during.jobsPerSecond).toBeGreaterThan(0)
      await chaos.stop(worker, "SIGTERM")
    },
    timeout
  )

  it("what backend_kill found, pinned: a server out of connection slots or shutting down is a 503, not a 500", () => {
    const failure = (code: string, message: string, operation: "connect" | "query" = "connect") =>
      new SqlError.SqlError({
        reason: new SqlError.UnknownError({
          cause: Object.assign(new Error(message), { code }),
          message: operation === "connect" ? "PgConnection: Failed to connect" : "PgConnection: Query failed",
          operation
        })
      })
    for (const [code, message] of [
      ["53300", "sorry, too many clients already"],
      ["57P01", "terminating connection due to administrator command"],
      ["57P03", "the database system is starting up"]
    ] as const) {
      expect(toUnavailable(failure(code, message))?.detail).toContain(code)
    }
    // a session the server terminates under a running statement is a 503 too
    expect(toUnavailable(failure("57P01", "terminating connection", "query"))?.detail).toContain("57P01")
    // a statement's genuine defect stays a 500
    expect(toUnavailable(failure("22P02", "invalid input syntax", "query"))).toBeUndefined()
  })
})
