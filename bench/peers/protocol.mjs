// How a peer's driver script talks to the harness (bench/scenarios/PeerDrain.ts): one JSON line on
// standard output per phase; `gate` then waits for a line on standard input, so the harness can read the
// database's and Redis's CPU counters at that point before the script goes on. Also the pickup probe the
// peers share: jobs added one at a time at a fixed rate, each one's latency from the add call's start to
// its handler's start, both on this process's clock.

import { createInterface } from "node:readline"

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()

export const report = (phase, value = {}) => console.log(JSON.stringify({ phase, ...value }))

export const gate = async (phase, value = {}) => {
  report(phase, value)
  await lines.next()
}

export const settings = {
  mode: process.env.BENCH_MODE ?? "drain",
  concurrency: Number(process.env.BENCH_CONCURRENCY ?? 8),
  backlog: Number(process.env.BENCH_BACKLOG ?? 20_000),
  pickupJobs: Number(process.env.BENCH_PICKUP_JOBS ?? 1000),
  pickupRate: Number(process.env.BENCH_PICKUP_RATE ?? 50),
  pickupWarmUp: Number(process.env.BENCH_PICKUP_WARM_UP ?? 100)
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Pickup latency: `add(i)` adds job i (its payload carries i); the handler calls `started(i)` first thing.
 * An unreported warm-up at the same rate comes first. Answers the measured latencies, in ms.
 */
export const pickupProbe = () => {
  const began = new Map()
  const latencies = new Map()
  const waiting = new Map()
  return {
    started: (i) => {
      const at = performance.now()
      if (!latencies.has(i)) latencies.set(i, at - began.get(i))
      waiting.get(i)?.()
    },
    run: async (add) => {
      const paced = async (from, n) => {
        const done = []
        const t0 = performance.now()
        for (let i = from; i < from + n; i++) {
          const wait = t0 + ((i - from) * 1000) / settings.pickupRate - performance.now()
          if (wait > 0) await sleep(wait)
          done.push(new Promise((resolve) => waiting.set(i, resolve)))
          began.set(i, performance.now())
          await add(i)
        }
        await Promise.race([
          Promise.all(done),
          sleep(30_000).then(() => Promise.reject(new Error("pickup: jobs not all run in 30 s")))
        ])
      }
      await paced(0, settings.pickupWarmUp)
      const from = settings.pickupWarmUp
      await paced(from, settings.pickupJobs)
      return Array.from({ length: settings.pickupJobs }, (_, k) => latencies.get(from + k))
    }
  }
}

/**
 * A drain's handler count: `handled(n)` from each handler call (n jobs, 1 by default) notes the first call's
 * moment and resolves `all` once `backlog` jobs were handled.
 */
export const drainCounter = (backlog) => {
  let firstCall = 0
  let handled = 0
  let resolveAll
  const all = new Promise((resolve) => {
    resolveAll = resolve
  })
  return {
    all,
    firstCall: () => firstCall,
    handled: (n = 1) => {
      if (firstCall === 0) firstCall = performance.now()
      handled += n
      if (handled >= backlog) resolveAll()
    }
  }
}
