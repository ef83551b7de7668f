/**
 * The API's admission to the database pool (src/http/DatabaseAdmission.ts), on its own: a request runs at
 * once while a place is free, waits for one otherwise, gives up only while it still waits, and never keeps a
 * place it gave up on. (test/api/database-timeouts.test.ts drives it through the API on a real pool.)
 */
import { describe, expect, it } from "bun:test"
import { Deferred, Duration, Effect, Exit, Fiber } from "effect"
import { admission } from "../src/http/DatabaseAdmission.ts"

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)

/** Until `fiber` has ended (or fails after `ms`). */
const settled = <A, E>(fiber: Fiber.Fiber<A, E>, ms = 5000) =>
  Fiber.await(fiber).pipe(Effect.timeout(ms), Effect.orDie)

type Admit = ReturnType<typeof admission>

/** A request that takes a place and holds it until `release` completes; it then answers "held". */
const holdPlace = (admit: Admit) =>
  Effect.gen(function* () {
    const release = yield* Deferred.make<void>()
    const holder = yield* Effect.forkChild(
      admit(Effect.andThen(Deferred.await(release), Effect.succeed("held")))
    )
    yield* Effect.yieldNow
    return { holder, release: Deferred.succeed(release, undefined) }
  })

describe("admission to the pool's places", () => {
  it("lets a waiting request in when a place comes free", async () => {
    const admit = admission(1, Duration.seconds(10))
    const outcome = await run(
      Effect.gen(function* () {
        const { holder, release } = yield* holdPlace(admit)
        const waiter = yield* Effect.forkChild(admit(Effect.succeed("waited")))
        yield* Effect.sleep("50 millis")
        const waitingWhileHeld = waiter.pollUnsafe() === undefined
        yield* release
        return {
          waitingWhileHeld,
          holder: yield* Fiber.join(holder),
          waiter: yield* Fiber.join(waiter)
        }
      })
    )
    expect(outcome).toEqual({ waitingWhileHeld: true, holder: "held", waiter: "waited" })
  })

  it("answers 503 to a request that waited the whole timeout, keeps no place for it, and does not cut admitted work short", async () => {
    const admit = admission(1, Duration.millis(50))
    const outcome = await run(
      Effect.gen(function* () {
        const { holder, release } = yield* holdPlace(admit)
        // many give up at once: none may keep the place it was about to get
        const waiters = yield* Effect.forEach(
          Array.from({ length: 50 }, () => admit(Effect.succeed("never"))),
          (waiter) => Effect.forkChild(waiter)
        )
        const gaveUp = yield* Effect.forEach(waiters, (waiter) => settled(waiter))
        const held = holder.pollUnsafe() === undefined
        yield* release
        const holderExit = yield* settled(holder)
        // the place is free again: the next request runs at once (a kept place would make it wait, then 503)
        const next = yield* admit(Effect.succeed("next"))
        return { gaveUp, held, holderExit, next }
      })
    )
    expect(outcome.held).toBe(true)
    for (const exit of outcome.gaveUp) {
      expect(Exit.isFailure(exit)).toBe(true)
      expect(String(Exit.isFailure(exit) ? exit.cause : "")).toContain("nothing was sent")
    }
    expect(Exit.isSuccess(outcome.holderExit) ? outcome.holderExit.value : undefined).toBe("held")
    expect(outcome.next).toBe("next")
  })

  it("keeps no place after a storm of requests admitted and giving up at about the same moments", async () => {
    // places come free at about the moment waiters give up; whatever each got, the count must add up
    const admit = admission(2, Duration.millis(20))
    const results = await run(
      Effect.forEach(
        Array.from({ length: 200 }, (_, i) =>
          admit(Effect.sleep(Duration.millis(5 + (i % 30))).pipe(Effect.as("ran"))).pipe(
            Effect.catchTag("DatabaseUnavailable", () => Effect.succeed("gave up"))
          )
        ),
        (request) => request,
        { concurrency: "unbounded" }
      )
    )
    expect(results.filter((r) => r === "ran").length).toBeGreaterThan(0)
    // both places are free afterwards: two requests hold them side by side (a kept place would leave the
    // second waiting, and giving up after 20 ms)
    const both = await run(
      Effect.gen(function* () {
        const release = yield* Deferred.make<void>()
        const started = [yield* Deferred.make<void>(), yield* Deferred.make<void>()]
        const holders = yield* Effect.forEach(started, (signal) =>
          Effect.forkChild(
            admit(Effect.andThen(Deferred.succeed(signal, undefined), Deferred.await(release)))
          )
        )
        const exits = yield* Effect.forEach(started, (signal, i) =>
          Effect.raceFirst(
            Effect.as(Deferred.await(signal), "holding"),
            Effect.map(Fiber.await(holders[i]!), (exit) => (Exit.isFailure(exit) ? "gave up" : "ended"))
          )
        )
        yield* Deferred.succeed(release, undefined)
        return exits
      })
    )
    expect(both).toEqual(["holding", "holding"])
  })
})
