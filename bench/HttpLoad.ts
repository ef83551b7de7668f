/**
 * A closed-loop HTTP load generator: `connections` loops, each sending its next request when the last
 * answered (Bun's fetch keeps connections alive), until `maxRequests` were sent or `seconds` passed.
 * Only 127.0.0.1 is a valid target.
 */
import { type Latency, latency } from "./Stats.ts"

export interface LoadResult {
  readonly requests: number
  readonly errors: number
  /** What the first few failed requests answered or threw. */
  readonly firstErrors?: ReadonlyArray<string>
  readonly seconds: number
  readonly perSecond: number
  readonly latencyMs: Latency
}

export const closedLoop = async (options: {
  readonly url: string
  readonly body: () => string
  readonly connections: number
  readonly seconds: number
  readonly maxRequests: number
}): Promise<LoadResult> => {
  if (new URL(options.url).hostname !== "127.0.0.1") throw new Error("load only targets 127.0.0.1")
  const samples: Array<number> = []
  let sent = 0
  let errors = 0
  const firstErrors: Array<string> = []
  const failed = (what: string) => {
    errors++
    if (firstErrors.length < 3) firstErrors.push(what)
  }
  const start = performance.now()
  const until = start + options.seconds * 1000
  const loop = async () => {
    while (sent < options.maxRequests && performance.now() < until) {
      sent++
      const t = performance.now()
      try {
        const response = await fetch(options.url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: options.body()
        })
        const text = await response.text()
        if (response.status >= 300) failed(`${response.status} ${text.slice(0, 200)}`)
      } catch (error) {
        failed(String(error))
      }
      samples.push(performance.now() - t)
    }
  }
  await Promise.all(Array.from({ length: options.connections }, loop))
  const seconds = (performance.now() - start) / 1000
  return {
    requests: samples.length,
    errors,
    firstErrors,
    seconds,
    perSecond: samples.length / seconds,
    latencyMs: latency(samples)
  }
}
