/**
 * The retry policy: decorrelated jitter, `sleep = min(cap, random_between(base, previous * 3))`.
 * Pure: no database. Bounds and growth are checked over many seeds; reproducibility with Random.withSeed.
 */
import { describe, expect, it } from "bun:test"
import { Effect, Random } from "effect"
import { decorrelatedJitter, firstDelays, type JitterBounds, nextDelayMs } from "../src/queue/Retry.ts"

const delays = (bounds: JitterBounds, n: number, seed: string | number) =>
  Effect.runPromise(firstDelays(decorrelatedJitter(bounds), undefined, n).pipe(Random.withSeed(seed)))

/** The same walk driven through `nextDelayMs`, threading the previous delay as a failed job would. */
const chainedNextDelays = (bounds: JitterBounds, n: number, seed: string | number) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const out: Array<number> = []
      let previous: number | undefined
      for (let i = 0; i < n; i++) {
        previous = yield* nextDelayMs(bounds, previous)
        out.push(previous)
      }
      return out
    }).pipe(Random.withSeed(seed))
  )

const bounds = { base: "100 millis", cap: "30 seconds" } satisfies JitterBounds
const seeds = Array.from({ length: 200 }, (_, i) => `seed-${i}`)

describe("retry policy (decorrelated jitter)", () => {
  it("every delay stays within [base, cap] and is a whole number of milliseconds", async () => {
    for (const seed of seeds) {
      for (const ms of await delays(bounds, 30, seed)) {
        expect(Number.isInteger(ms)).toBe(true)
        expect(ms).toBeGreaterThanOrEqual(100)
        expect(ms).toBeLessThanOrEqual(30_000)
      }
    }
  })

  it("each delay is at most min(cap, 3 x previous), the first at most 3 x base", async () => {
    for (const seed of seeds) {
      const walk = await delays(bounds, 30, seed)
      expect(walk[0]!).toBeLessThanOrEqual(300)
      for (let i = 1; i < walk.length; i++) {
        expect(walk[i]!).toBeLessThanOrEqual(Math.min(30_000, 3 * walk[i - 1]!))
        expect(walk[i]!).toBeGreaterThanOrEqual(100)
      }
    }
  })

  it("grows from base towards the cap, and reaches the cap", async () => {
    const walks = await Promise.all(seeds.map((seed) => delays(bounds, 40, seed)))
    const mean = (i: number) => walks.reduce((sum, w) => sum + w[i]!, 0) / walks.length
    // 3x growth of the upper bound makes the mean climb for the first steps
    expect(mean(1)).toBeGreaterThan(mean(0))
    expect(mean(4)).toBeGreaterThan(mean(1))
    expect(mean(0)).toBeLessThan(300)
    expect(walks.some((w) => w.includes(30_000))).toBe(true)
    expect(Math.max(...walks.map((w) => Math.max(...w)))).toBe(30_000)
  })

  it("is reproducible: the same seed gives the same delays, different seeds differ", async () => {
    const a = await delays(bounds, 20, "reproducible")
    const b = await delays(bounds, 20, "reproducible")
    const c = await delays(bounds, 20, "another seed")
    const d = await delays(bounds, 20, 42)
    expect(a).toEqual(b)
    expect(c).not.toEqual(a)
    expect(d).not.toEqual(a)
    expect(await delays(bounds, 20, 42)).toEqual(d)
  })

  it("nextDelayMs, threading the previous delay, walks exactly as the Schedule does", async () => {
    for (const seed of seeds.slice(0, 50)) {
      expect(await chainedNextDelays(bounds, 25, seed)).toEqual(await delays(bounds, 25, seed))
    }
  })

  it("nextDelayMs without a previous delay draws from [base, 3 x base]; a capped previous stays capped", async () => {
    for (const seed of seeds) {
      const first = await Effect.runPromise(nextDelayMs(bounds).pipe(Random.withSeed(seed)))
      expect(first).toBeGreaterThanOrEqual(100)
      expect(first).toBeLessThanOrEqual(300)
      const afterCap = await Effect.runPromise(nextDelayMs(bounds, 30_000).pipe(Random.withSeed(seed)))
      expect(afterCap).toBeGreaterThanOrEqual(100)
      expect(afterCap).toBeLessThanOrEqual(30_000)
      // a previous delay below base (or null) counts as base
      const fromNull = await Effect.runPromise(nextDelayMs(bounds, null).pipe(Random.withSeed(seed)))
      const fromTiny = await Effect.runPromise(nextDelayMs(bounds, 1).pipe(Random.withSeed(seed)))
      expect(fromNull).toBe(first)
      expect(fromTiny).toBe(first)
    }
  })

  it("base equal to cap gives a constant delay; a cap below base is raised to base", async () => {
    expect(await delays({ base: "2 seconds", cap: "2 seconds" }, 10, "flat")).toEqual(Array(10).fill(2000))
    expect(await delays({ base: "500 millis", cap: "10 millis" }, 5, "inverted")).toEqual(Array(5).fill(500))
  })
})
