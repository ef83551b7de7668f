/**
 * Chaos with worker processes: SIGKILL mid-flight and restart, repeated kills among several workers, and a
 * rolling deploy by SIGTERM. Short profile in `npm test`, long profile in `npm run test:chaos` (profile.ts).
 */
import { describe, expect, it } from "bun:test"
import { expectNothingLost, jitter, releasedAtShutdown, setupChaos, summary } from "./harness.ts"
import { pick, profile, report } from "./profile.ts"

const chaos = await setupChaos(import.meta.file)
const timeout = pick(90_000, 900_000)

describe(`chaos (${profile}): worker processes`, () => {
  it(
    "crash_recovery: SIGKILL the only worker mid-flight, start another; every job succeeds",
    async () => {
      const queue = "crash_recovery"
      const cycles = pick(1, 5)
      const ids = await chaos.enqueue(queue, pick(80, 1500), jitter(50, 250))
      let current = chaos.worker("crash-0", { WORKER_QUEUES: queue, WORKER_CONCURRENCY: "8" })
      const recoveries: Array<number> = []
      for (let cycle = 0; cycle < cycles; cycle++) {
        const before = await chaos.succeededCount(queue)
        await chaos.progressed(queue, before, pick(10, 60), 60_000)
        await chaos.stop(current, "SIGKILL")
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
      expect(await chaos.running(queue)).toBe(0)
    },
    timeout
  )

  it(
    "repeated_kills: SIGKILL a random one of 3 workers again and again during a sustained run",
    async () => {
      const queue = "repeated_kills"
      const kills = pick(4, 40)
      const ids = await chaos.enqueue(queue, pick(240, 4000), jitter(20, 150))
      const env = { WORKER_QUEUES: queue, WORKER_CONCURRENCY: "6" }
      let spawned = 0
      const live = [0, 1, 2].map(() => chaos.worker(`kills-${spawned++}`, env))
      const began = Date.now()
      await chaos.progressed(queue, 0, 10, 60_000)
      for (let k = 0; k < kills; k++) {
        const victim = live.splice(Math.floor(Math.random() * live.length), 1)[0]!
        await chaos.stop(victim, "SIGKILL")
        live.push(chaos.worker(`kills-${spawned++}`, env))
        await Bun.sleep(pick(600, 1200) + Math.floor(Math.random() * 400))
      }
      const faultsEndedAt = Date.now()
      const drainMs = await chaos.drained(queue, pick(60_000, 600_000))
      await Promise.all(live.map((w) => chaos.stop(w, "SIGTERM")))
      const verdict = await chaos.verdict(ids)
      report("chaos", {
        scenario: "repeated_kills",
        injected: `${kills} x SIGKILL of a random worker of 3 (concurrency 6 each), replaced at once, over ${Math.round((faultsEndedAt - began) / 1000)} s`,
        ...summary(verdict),
        recoveryMs: drainMs,
        drainMs
      })
      expectNothingLost(verdict)
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
      // run the grace period cut short (released at shutdown, read from the Info logs)
      const env = {
        LOG_LEVEL: "Info",
        WORKER_QUEUES: queue,
        WORKER_CONCURRENCY: "8",
        WORKER_SHUTDOWN_GRACE: "500 millis",
        WORKER_LEASE: "30 seconds"
      }
      let generation = [chaos.worker("deploy-0a", env), chaos.worker("deploy-0b", env)]
      const logs = generation.map((w) => w.logFile)
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
        generation = [chaos.worker(`deploy-${d}a`, env), chaos.worker(`deploy-${d}b`, env)]
        logs.push(...generation.map((w) => w.logFile))
        const began = Date.now()
        await Promise.all(old.map(ended))
        stops.push(Date.now() - began)
      }
      const drainMs = await chaos.drained(queue, pick(60_000, 600_000))
      await Promise.all(generation.map(ended))
      const released = releasedAtShutdown(logs)
      const verdict = await chaos.verdict(ids, released)
      report("chaos", {
        scenario: "graceful_deploy",
        injected: `${deploys} deploys: SIGTERM both busy workers (grace 500 ms) while 2 new ones start`,
        ...summary(verdict),
        releasedAtShutdown: [...released.values()].reduce((a, b) => a + b, 0),
        recoveryMs: Math.max(...stops),
        drainMs,
        exits: [...new Set(exits)]
      })
      expectNothingLost(verdict)
      expect(verdict.duplicates.filter((d) => !released.has(d.id))).toEqual([])
      expect(verdict.leaseLosses).toBe(0)
      expect(exits.filter((e) => e.startsWith("killed"))).toEqual([])
      expect(await chaos.running(queue)).toBe(0)
    },
    timeout
  )
})
