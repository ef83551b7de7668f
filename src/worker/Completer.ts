/**
 * Batches job completions: every success waiting when the completer is free goes out in one statement, so
 * under load N completions cost one round trip and when idle one costs no extra wait. A caller learns
 * whether its job was still held only after the statement committed.
 */
import { Deferred, Effect, Queue } from "effect"
import { JobRepo } from "../queue/JobRepo.ts"
import { decorrelatedJitter } from "../queue/Retry.ts"

interface Pending {
  readonly id: string
  readonly result: unknown
  readonly done: Deferred.Deferred<boolean>
}

const maxBatch = 1000

export const make = (workerId: string) =>
  Effect.gen(function* () {
    const repo = yield* JobRepo
    const pending = yield* Queue.unbounded<Pending>()

    const flush = (batch: ReadonlyArray<Pending>) =>
      repo
        .complete(
          workerId,
          batch.map((p) => ({ id: p.id, result: p.result }))
        )
        .pipe(
          // a completion must not be dropped for a passing database error: retry until it lands
          Effect.tapError((error) => Effect.logWarning("completing jobs failed; retrying", error.message)),
          Effect.retry(decorrelatedJitter({ base: "50 millis", cap: "5 seconds" })),
          Effect.flatMap((held) => {
            const ids = new Set<string>(held)
            return Effect.forEach(batch, (p) => Deferred.succeed(p.done, ids.has(p.id)), { discard: true })
          })
        )

    yield* Queue.takeBetween(pending, 1, maxBatch).pipe(
      Effect.flatMap(flush),
      Effect.forever,
      Effect.annotateLogs({ module: "Completer" }),
      Effect.forkScoped
    )

    /** Marks the job succeeded; answers false when this worker no longer held it. */
    const complete = (id: string, result: unknown) =>
      Effect.gen(function* () {
        const done = yield* Deferred.make<boolean>()
        yield* Queue.offer(pending, { id, result, done })
        return yield* Deferred.await(done)
      })

    return { complete }
  })
