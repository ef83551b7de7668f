/**
 * Chaos with worker processes: SIGKILL mid-flight and restart, repeated kills among several workers, and a
 * rolling deploy by SIGTERM. Short profile in `npm test`, long profile in `npm run test:chaos` (profile.ts).
 *
 * A kill or a deploy waits until its victims are running jobs by the database (leased to them, with a run
 * they began), and a kill must show in the outcome: the rescuer took back some of the jobs its victim was
 * running. A kill of an idle worker proves nothing.
 */
import { describe, expect, it } from "bun:test"
import { type Chaos, expectNothingLost, jitter, setupChaos, summary } from "./harness.ts"
import { pick, profile, report } from "./profile.ts"

const chaos = await setupChaos(import.meta.file)
const timeout = pick(90_000, 900_000)

type WorkerProcess = ReturnType<Chaos["worker"]>

/** Kills `victim`, which must be running jobs (`running`: their ids, read just before); returns the kill. */
const kill = async (victim: WorkerProcess, running: ReadonlyArray<string>) => {
  await chaos.stop(victim, "SIGKILL")
  return { worker: victim.id, running }
}

/** Kills whose victim lost none of the jobs it was running to the rescuer: they hit no running work. */
const missed = async (kills: ReadonlyArray<{ worker: string; running: ReadonlyArray<string> }>) => {
  const misses: Array<string> = []
  for (const k of kills)
    if ((await chaos.rescuedFrom(k.worker, k.running)).length === 0) misses.push(k.worker)
  return misses
}

describe(`chaos (${profile}): worker processes`, () => {
  it(
    "crash_recovery: SIGKILL the only worker mid-flight, start another; every job succeeds",
    async () => {
      const queue = "crash_recovery"
      const cycles = pick(1, 5)
      const ids = await chaos.enqueue(queue, pick(80, 1500), jitter(50, 250))
      let current = chaos.worker("crash-0", { WORKER_QUEUES: queue, WORKER_CONCURRENCY: "8" })
      const recoveries: Array<number> = []
      const kills: Array<Awaited<ReturnType<typeof kill>>> = []
      for (let cycle = 0; cycle < cycles; cycle++) {
        const before = await chaos.succeededCount(queue)
        await chaos.progressed(queue, before, pick(10, 60), 60_000)
        const running = (await chaos.runningOn([current.id])).get(current.id)!
        kills.push(await kill(current, running))
        const killedAt = Date.now()
        const after = await chaos.succeededCount(queue)
        current = chaos.worker(`crash-${cycle + 1}`, { WORKER_QUEUES: queue, WORKER_CONCURRENCY: "8" })
        await chaos.progressed(queue, after, 1, 60_000)
        recoveries.push(Date.now() - killedAt)
      }
      const drainMs = await chaos.drained(queue, pick(60_000, 600_000))
      await chaos.stop(current, "SIGTERM")
      const verdict = await chaos.verdict(ids)
      report("chaos", {
        scenario: "crash_recovery",
        injected: `${cycles} x SIGKILL of the only worker (concurrency 8) mid-flight, replacement started at once`,
        ...summary(verdict),
        recoveryMs: Math.max(...recoveries),
        drainMs
      })
      expectNothingLost(verdict)
      expect(await missed(kills)).toEqual([])
      expect(await chaos.running(queue)).toBe(0)
    },
    timeout
  )

  it(
    "repeated_kills: SIGKILL a random one of 3 workers again and again during a sustained run",
    async () => {
      const queue = "repeated_kills"
      const killCount = pick(4, 40)
      // enough work that every kill finds its victim busy; a short lease, so the last kill's jobs come back soon
      const ids = await chaos.enqueue(queue, pick(300, 6000), jitter(50, 250))
      const env = {
        WORKER_QUEUES: queue,
        WORKER_CONCURRENCY: "6",
        WORKER_LEASE: "1500 millis",
        WORKER_LEASE_RENEW: "250 millis"
      }
      let spawned = 0
      const live = [0, 1, 2].map(() => chaos.worker(`kills-${spawned++}`, env))
      const began = Date.now()
      await chaos.progressed(queue, 0, 10, 60_000)
      const kills: Array<Awaited<ReturnType<typeof kill>>> = []
      for (let k = 0; k < killCount; k++) {
        // a random one of the workers that are running jobs now
        const busy = await chaos.runningOn(live.map((w) => w.id))
        const candidates = live.filter((w) => busy.has(w.id))
        const victim = candidates[Math.floor(Math.random() * candidates.length)]!
        live.splice(live.indexOf(victim), 1)
        kills.push(await kill(victim, busy.get(victim.id)!))
        live.push(chaos.worker(`kills-${spawned++}`, env))
        // the others carry on before the next kill
        await chaos.progressed(queue, await chaos.succeededCount(queue), pick(15, 80), 60_000)
      }
      const faultsEndedAt = Date.now()
      const drainMs = await chaos.drained(queue, pick(60_000, 600_000))
      await Promise.all(live.map((w) => chaos.stop(w, "SIGTERM")))
      const verdict = await chaos.verdict(ids)
      report("chaos", {
        scenario: "repeated_kills",
        injected: `${killCount} x SIGKILL of a random busy worker of 3 (concurrency 6 each, lease 1.5 s), replaced at once, over ${Math.round((faultsEndedAt - began) / 1000)} s`,
        ...summary(verdict),
        recoveryMs: drainMs,
        drainMs
      })
      expectNothingLost(verdict)
      expect(await missed(kills)).toEqual([])
      expect(await chaos.running(queue)).toBe(0)
    },
    timeout
  )

  it(
    "graceful_deploy: SIGTERM every busy worker, start new ones; nothing lost, nothing left running, reruns only of released jobs",
    async () => {
      const queue = "graceful_deploy"
      const deploys = pick(1, 6)
      const ids = await chaos.enqueue(queue, pick(120, 2400), jitter(100, 800))
      // a lease long enough that a loaded machine cannot expire one: a rerun is allowed only for a job whose
      // run the grace period cut short (released at shutdown: recorded by the database, see harness.ts)
      const env = {
        WORKER_QUEUES: queue,
        WORKER_CONCURRENCY: "8",
        WORKER_SHUTDOWN_GRACE: "500 millis",
        WORKER_LEASE: "30 seconds"
      }
      let generation = [chaos.worker("deploy-0a", env), chaos.worker("deploy-0b", env)]
      // how each old worker ended: by its own exit (src/platform/Main.ts answers an interrupted main fiber
      // with 130), never by the signal's default action
      const exits: Array<string> = []
      const ended = async (w: (typeof generation)[number]) => {
        const code = await chaos.stop(w, "SIGTERM")
        exits.push(w.process.signalCode === null ? `exit ${code}` : `killed by ${w.process.signalCode}`)
      }
      const stops: Array<number> = []
      for (let d = 1; d <= deploys; d++) {
        await chaos.progressed(queue, await chaos.succeededCount(queue), pick(10, 40), 60_000)
        const old = generation
        // both busy: each is running jobs when it gets its SIGTERM
        await Promise.all(old.map((w) => chaos.runningOn([w.id])))
        generation = [chaos.worker(`deploy-${d}a`, env), chaos.worker(`deploy-${d}b`, env)]
        const began = Date.now()
        await Promise.all(old.map(ended))
        stops.push(Date.now() - began)
      }
      const drainMs = await chaos.drained(queue, pick(60_000, 600_000))
      await Promise.all(generation.map(ended))
      const verdict = await chaos.verdict(ids)
      report("chaos", {
        scenario: "graceful_deploy",
        injected: `${deploys} deploys: SIGTERM both busy workers (grace 500 ms) while 2 new ones start`,
        ...summary(verdict),
        releasedRuns: verdict.reruns.reduce((n, r) => n + r.releasedRuns, 0),
        recoveryMs: Math.max(...stops),
        drainMs,
        exits: [...new Set(exits)]
      })
      expectNothingLost(verdict)
      // record never fails and no lease may expire: a job began a second run only after a worker that was
      // running it gave it back at shutdown
      expect(verdict.reruns.filter((r) => r.releasedRuns === 0)).toEqual([])
      expect(verdict.leaseLosses).toBe(0)
      expect(exits.filter((e) => e.startsWith("killed"))).toEqual([])
      expect(await chaos.running(queue)).toBe(0)
    },
    timeout
  )
})
