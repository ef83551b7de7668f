/** The demo kinds the programs run when `JOBS_MODULE` is not set (the seed's four). */
import { createHash } from "node:crypto"
import { Effect, Schema } from "effect"
import { defineKind, EmptyPayload } from "../domain/JobKind.ts"

export const noop = defineKind({
  name: "noop",
  description: "Does nothing and succeeds. Its payload is `{}`.",
  payload: EmptyPayload,
  handler: () => Effect.succeed(null)
})

export const sleep = defineKind({
  name: "sleep",
  description: "Sleeps for `ms` milliseconds; interruptible at any point.",
  payload: Schema.Struct({
    ms: Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 0, maximum: 3_600_000 })))
  }).annotate({ examples: [{ ms: 500 }] }),
  handler: ({ ms }) => Effect.sleep(ms).pipe(Effect.as({ sleptMs: ms }))
})

export const flaky = defineKind({
  name: "flaky",
  description: "Fails its first `failTimes` attempts, then succeeds.",
  payload: Schema.Struct({
    failTimes: Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 0, maximum: 1000 })))
  }).annotate({ examples: [{ failTimes: 2 }] }),
  handler: ({ failTimes }, { attempt }) =>
    attempt <= failTimes
      ? Effect.fail(new Error(`flaky: attempt ${attempt} of ${failTimes} planned failures`))
      : Effect.succeed({ succeededOnAttempt: attempt })
})

/**
 * Chains SHA-256 `rounds` times over `seed`. Long CPU work yields to the scheduler every
 * `yieldEvery` rounds: those are its safe points, where a cancel or shutdown can interrupt it.
 */
export const cpuHash = defineKind({
  name: "cpu_hash",
  description: "Deterministic CPU work: SHA-256 chained `rounds` times over `seed`.",
  payload: Schema.Struct({
    seed: Schema.String.pipe(Schema.check(Schema.isMaxLength(1024))),
    rounds: Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: 100_000_000 })))
  }).annotate({ examples: [{ seed: "hello", rounds: 1000 }] }),
  handler: ({ seed, rounds }) =>
    Effect.gen(function* () {
      const yieldEvery = 10_000
      let digest = Buffer.from(seed)
      for (let done = 0; done < rounds; ) {
        const until = Math.min(rounds, done + yieldEvery)
        for (; done < until; done++) digest = createHash("sha256").update(digest).digest()
        yield* Effect.yieldNow
      }
      return { rounds, digest: digest.toString("hex") }
    })
})

export const demoKinds = [noop, sleep, flaky, cpuHash]
