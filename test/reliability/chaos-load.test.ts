/**
 * Chaos by workload: a storm of failing jobs retrying at once, and mixed priorities under a bounded stream
 * of high-priority work.
 *
 * Priority policy (docs/reliability.md): claims are strictly ordered by (priority, run_at, id), lower
 * priority value first, with no ageing. A low-priority job therefore waits while ready higher-priority work
 * exists; "still completes" means: once a bounded high-priority stream ends, every low-priority job
 * completes, and a low-priority job never runs before a higher-priority job that was ready at its claim.
 */
import { describe, expect, it } from "bun:test"
import { setupChaos, summary } from "./harness.ts"
import { pick, profile, report } from "./profile.ts"

const chaos = await setupChaos(import.meta.file)
const timeout = pick(90_000, 900_000)

describe(`chaos (${profile}): workload`, () => {
  it(
    "retry_storm: many jobs failing and retrying at once across 2 workers; no duplicate completions",
    async () => {
      const queue = "retry_storm"
      const count = pick(300, 4000)
      const maxAttempts = 6
      // most fail 1-5 times then succeed; every tenth fails more often than it may try: failed_permanent
      const failTimes = (i: number) => (i % 10 === 0 ? maxAttempts : 1 + (i % 5))
      const ids = await chaos.enqueue(queue, count, (i) => ({ sleepMs: 5, failTimes: failTimes(i) }), {
        kind: "record_flaky",
        maxAttempts
      })
      const env = {
        WORKER_QUEUES: queue,
        WORKER_CONCURRENCY: "16",
        RETRY_BASE: "20 millis",
        RETRY_CAP: "400 millis"
      }
      const workers = [chaos.worker("storm-a", env), chaos.worker("storm-b", env)]
      const drainMs = await chaos.drained(queue, pick(90_000, 600_000))
      await Promise.all(workers.map((w) => chaos.stop(w, "SIGTERM")))
      const verdict = await chaos.verdict(ids)
      const [attempts] = await chaos.pg`
        SELECT sum(attempts)::int AS total,
               count(*) FILTER (
                 WHERE status = 'succeeded' AND attempts <> 1 + (
                   -- a rescue that refunded the attempt (its start was never recorded) stores an error too
                   SELECT count(*) FROM jsonb_array_elements(errors) e
                   WHERE e->>'error' NOT LIKE '%attempt not counted'))::int AS "succeededMismatch",
               count(*) FILTER (WHERE status = 'failed_permanent' AND attempts <> ${maxAttempts})::int AS "failedMismatch"
        FROM jobs WHERE queue = ${queue}`
      const expectedFailed = ids.filter((_, i) => failTimes(i) >= maxAttempts).length
      report("chaos", {
        scenario: "retry_storm",
        injected: `${count} jobs failing 1-5 times (10% more than their ${maxAttempts} attempts), retry delay 20-400 ms, 2 workers x 16`,
        ...summary(verdict),
        attempts: attempts.total,
        byStatus: verdict.byStatus,
        recoveryMs: drainMs,
        drainMs
      })
      expect(verdict.lost).toEqual([])
      expect(verdict.notTerminal).toEqual([])
      expect(verdict.violations).toEqual([])
      expect(verdict.byStatus).toEqual({
        succeeded: count - expectedFailed,
        failed_permanent: expectedFailed
      })
      // exactly one completion per succeeded job, none for the failed ones
      expect(verdict.duplicates).toEqual([])
      expect(verdict.completions).toBe(count - expectedFailed)
      // every attempt is accounted for: one stored error per failed attempt that counted
      expect(attempts.succeededMismatch).toBe(0)
      expect(attempts.failedMismatch).toBe(0)
      expect(await chaos.running(queue)).toBe(0)
    },
    timeout
  )

  it(
    "priority_starvation: strict priority; low priority completes once a bounded high-priority stream ends",
    async () => {
      const queue = "priority_starvation"
      // when each job was committed at the latest, on the database's clock: read after its enqueue returned,
      // so any claim that began later saw it ready
      await chaos.pg`CREATE TABLE ready_since (id uuid PRIMARY KEY, at timestamptz NOT NULL)`
      const enqueue = async (count: number, sleepMs: number, priority: number) => {
        const ids = await chaos.enqueue(queue, count, () => ({ sleepMs }), { priority: () => priority })
        await chaos.pg`INSERT INTO ready_since SELECT unnest(${ids}::uuid[]), clock_timestamp()`
        return ids
      }
      const low = await enqueue(pick(60, 600), 5, 10)
      const mid = await enqueue(pick(60, 600), 5, 5)
      // a stream of high-priority work, bounded in count, faster (200 jobs/s) than the worker's capacity
      // (4 slots x 40 ms = 100 jobs/s): high-priority work is ready during the whole stream
      const high: Array<string> = []
      const wave = () => enqueue(20, 40, 0)
      high.push(...(await wave()))
      const worker = chaos.worker("prio-w", { WORKER_QUEUES: queue, WORKER_CONCURRENCY: "4" })
      await chaos.progressed(queue, 0, 1, 30_000)
      const streamBegan = new Date()
      const waves = pick(15, 150)
      for (let w = 1; w < waves; w++) {
        high.push(...(await wave()))
        await Bun.sleep(100)
      }
      const streamEnded = new Date()
      const drainMs = await chaos.drained(queue, pick(60_000, 600_000))
      await chaos.stop(worker, "SIGTERM")
      const ids = [...low, ...mid, ...high]
      const verdict = await chaos.verdict(ids)
      // claim order: a job claimed (started_at is its claim's now()) by a claim that began after a
      // higher-priority job was committed and ready, while a later claim took that job, is an inversion.
      // No slack: a claim's snapshot sees every job committed before it began, and the worker claims in one
      // fetch fiber, so nothing else held that job locked
      const [order] = await chaos.pg`
        SELECT count(*)::int AS inversions FROM jobs a
        WHERE a.queue = ${queue} AND EXISTS (
          SELECT 1 FROM jobs b JOIN ready_since r ON r.id = b.id
          WHERE b.queue = ${queue} AND b.priority < a.priority
            AND r.at < a.started_at AND b.started_at > a.started_at)`
      const [finish] = await chaos.pg`
        SELECT count(*) FILTER (WHERE priority > 0 AND started_at BETWEEN ${streamBegan} AND ${streamEnded})::int AS "lowerStartedDuringStream",
               extract(epoch FROM max(finished_at) FILTER (WHERE priority = 10) - ${streamEnded}::timestamptz) * 1000 AS "lowDoneAfterStreamMs"
        FROM jobs WHERE queue = ${queue}`
      report("chaos", {
        scenario: "priority_starvation",
        injected: `${low.length} low (10) + ${mid.length} mid (5) queued, then ${high.length} high (0) in ${waves} waves of 20 every 100 ms; 1 worker x 4`,
        ...summary(verdict),
        inversions: order.inversions,
        streamMs: streamEnded.getTime() - streamBegan.getTime(),
        lowerStartedDuringStream: finish.lowerStartedDuringStream,
        lowDoneAfterStreamMs: Math.round(Number(finish.lowDoneAfterStreamMs)),
        recoveryMs: drainMs,
        drainMs
      })
      expect(verdict.lost).toEqual([])
      expect(verdict.notTerminal).toEqual([])
      expect(verdict.violations).toEqual([])
      expect(verdict.byStatus).toEqual({ succeeded: ids.length })
      expect(order.inversions).toBe(0)
    },
    timeout
  )
})
