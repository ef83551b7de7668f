/**
 * Batches job completions: every success waiting when the completer is free goes out in one statement, so
 * under load N completions cost one round trip and when idle one costs no extra wait. A job is reported
 * done (`onDone`) only after its statement committed. Closing the completer's scope flushes what is still
 * pending before it ends. With `deleteSucceeded` the statement deletes the jobs instead of storing results (but
 * for jobs in flows, see `FlowRepo.completeDeleting`).
 */
import { Cause, Effect, Fiber, Queue } from "effect"
import { FlowRepo } from "../queue/FlowRepo.ts"
import { JobRepo } from "../queue/JobRepo.ts"
import { decorrelatedJitter } from "../queue/Retry.ts"
import { type EncodedResult, maxBatchResultLength } from "../queue/results.ts"

interface Pending {
  readonly id: string
  /** Encoded in the job's fiber (`encodeResult`); null: none. */
  readonly result: EncodedResult | null
  /** Runs after the commit: whether this worker still held the job (false: its lease was lost). */
  readonly onDone: (held: boolean) => void
}

const maxBatch = 1000

/** The batch in statements of at most `maxBatchResultLength` of result text each (one, nearly always). */
const byResultSize = (batch: ReadonlyArray<Pending>): Array<ReadonlyArray<Pending>> => {
  const statements: Array<Array<Pending>> = [[]]
  let size = 0
  for (const pending of batch) {
    const length = pending.result?.json.length ?? 0
    if (size + length > maxBatchResultLength && statements.at(-1)!.length > 0) {
      statements.push([])
      size = 0
    }
    statements.at(-1)!.push(pending)
    size += length
  }
  return statements
}

export interface CompleterOptions {
  readonly workerId: string
  /** The most completions waiting at once; a job's fiber waits to submit beyond it. */
  readonly capacity: number
  /** Delete succeeded jobs instead of storing their results (`JOB_RETENTION=0`). */
  readonly deleteSucceeded: boolean
}

export const make = ({ workerId, capacity, deleteSucceeded }: CompleterOptions) =>
  Effect.gen(function* () {
    const repo = yield* JobRepo
    const flowRepo = yield* FlowRepo
    const pending = yield* Queue.bounded<Pending, Cause.Done>(capacity)

    const statement = (batch: ReadonlyArray<Pending>) =>
      deleteSucceeded
        ? // a flow's jobs are kept (with their results) until their flow is deleted
          flowRepo.completeDeleting(
            workerId,
            batch.map((p) => ({ id: p.id, result: p.result }))
          )
        : repo.complete(
            workerId,
            batch.map((p) => ({ id: p.id, result: p.result }))
          )

    const flush = (batch: ReadonlyArray<Pending>) =>
      // suspended: building the statement runs inside the effect, so that a throw there is this batch's
      // defect, not the end of the loop (and of every completion after it)
      Effect.suspend(() => statement(batch)).pipe(
        // not dropped for a passing database error; after ~a minute of failures the jobs are reported not
        // completed and the pool hands them back to the queue (run again), which is the at-least-once contract
        Effect.tapError((error) => Effect.logWarning("completing jobs failed; retrying", error.message)),
        Effect.retry({ schedule: decorrelatedJitter({ base: "50 millis", cap: "5 seconds" }), times: 20 }),
        Effect.catchCause((cause) =>
          Cause.hasInterruptsOnly(cause)
            ? Effect.failCause(cause)
            : Effect.as(
                Cause.hasFails(cause)
                  ? Effect.void
                  : Effect.logError("completing jobs failed; handing them back", Cause.pretty(cause)),
                []
              )
        ),
        Effect.tap((held) =>
          Effect.sync(() => {
            // the held are some of the batch, so as many as the batch means all of it (the usual case)
            if (held.length === batch.length) for (const p of batch) p.onDone(true)
            else {
              const still = new Set<string>(held)
              for (const p of batch) p.onDone(still.has(p.id))
            }
          })
        )
      )

    const loop = yield* Queue.takeBetween(pending, 1, maxBatch).pipe(
      Effect.flatMap((batch) => Effect.forEach(byResultSize(batch), flush, { discard: true })),
      Effect.forever,
      Effect.catchCause((cause) =>
        Cause.hasInterruptsOnly(cause) || Cause.isDone(Cause.squash(cause))
          ? Effect.void
          : Effect.logError("the completer stopped", Cause.pretty(cause))
      ),
      Effect.annotateLogs({ module: "Completer" }),
      Effect.forkDetach
    )
    // end the queue and let the loop flush what remains (a Done from takeBetween ends it)
    yield* Effect.addFinalizer(() => Queue.end(pending).pipe(Effect.andThen(Fiber.await(loop))))

    /** Queues the job's completion; `onDone` runs once it committed. Waits only when the queue is full. */
    const submit = (id: string, result: EncodedResult | null, onDone: Pending["onDone"]) =>
      Queue.offer(pending, { id, result, onDone }).pipe(Effect.asVoid)

    return { submit }
  })
