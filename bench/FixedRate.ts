/**
 * An open-loop load generator: call i is due at start + i / perSecond, for `seconds`, made by at most
 * `maxInFlight` loops; a loop that falls behind makes its next due call at once, so when the target (or
 * the loop count) cannot keep up, the achieved rate drops below the offered one instead of the backlog
 * growing without bound. `pace` makes any call (the soak's `Queue.enqueueMany`); `offer` POSTs to an HTTP
 * endpoint, and only 127.0.0.1 is a valid target.
 */
import { type Latency, latency } from "./Stats.ts"

export interface FixedRateResult {
  readonly offered: number
  readonly ok: number
  readonly errors: number
  readonly seconds: number
  /** Successful calls (2xx answers) per second, from the first call to the last answer. */
  readonly achievedPerSecond: number
  readonly latencyMs: Latency
  /** Calls made more than 10 ms after they were due (every loop was busy). */
  readonly late: number
}

/** Makes `call` at a fixed rate; it answers whether the call succeeded (a throw counts as an error). */
export const pace = async (options: {
  readonly call: () => Promise<boolean>
  readonly perSecond: number
  readonly seconds: number
  readonly maxInFlight: number
}): Promise<FixedRateResult> => {
  const total = Math.round(options.perSecond * options.seconds)
  const samples: Array<number> = []
  let next = 0
  let ok = 0
  let errors = 0
  let late = 0
  const start = performance.now()
  const loop = async () => {
    while (next < total) {
      const due = start + (next++ * 1000) / options.perSecond
      const wait = due - performance.now()
      if (wait > 0) await Bun.sleep(wait)
      else if (wait < -10) late++
      const t = performance.now()
      try {
        if (await options.call()) ok++
        else errors++
      } catch {
        errors++
      }
      samples.push(performance.now() - t)
    }
  }
  await Promise.all(Array.from({ length: options.maxInFlight }, loop))
  const seconds = (performance.now() - start) / 1000
  return {
    offered: total,
    ok,
    errors,
    seconds,
    achievedPerSecond: ok / seconds,
    latencyMs: latency(samples),
    late
  }
}

export const offer = async (options: {
  readonly url: string
  readonly body: () => string
  readonly perSecond: number
  readonly seconds: number
  readonly maxInFlight: number
}): Promise<FixedRateResult> => {
  if (new URL(options.url).hostname !== "127.0.0.1") throw new Error("load only targets 127.0.0.1")
  return pace({
    perSecond: options.perSecond,
    seconds: options.seconds,
    maxInFlight: options.maxInFlight,
    call: async () => {
      const response = await fetch(options.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: options.body()
      })
      await response.arrayBuffer()
      return response.status >= 200 && response.status < 300
    }
  })
}
