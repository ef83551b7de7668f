/**
 * Waiting for jobs to finish, for any number of waiters on one LISTEN connection per process.
 *
 * The database notifies `jobq_finished` (payload `*`) once per transaction that finished jobs, while some
 * process holds the finished-jobs gate (migrations/0008): a process holds it from its first wait. One fiber listens (started by the first wait, then kept until the layer
 * closes); another reads, per notification (or per burst of them), every waited-for job it names in one
 * query and wakes the waiters whose job is terminal or gone. A waiter subscribes before it reads its job,
 * so a job that finishes between the two is caught by one or the other. Notifications can be lost while
 * the listener reconnects: after every (re)connection every waited-for job is read again, and a waiter
 * whose wait ends reads its job once more anyway.
 */
import { Context, Deferred, type Duration, Effect, Layer, Option, Queue, type Scope } from "effect"
import type { SqlError } from "effect/sql"
import type { Notifications } from "../db/Notifications.ts"
import type { Job, JobStatus } from "../domain/Job.ts"
import * as GateKeeper from "./GateKeeper.ts"
import { JobRepo } from "./JobRepo.ts"
import { channels, subscribe } from "./Notifier.ts"
import { decorrelatedJitter } from "./Retry.ts"

/** Where a job's wait ended. */
export interface WaitOutcome {
  readonly job: Job
  /** Whether the job is terminal (succeeded, failed_permanent, cancelled); false: the wait timed out. */
  readonly finished: boolean
}

const terminal: ReadonlySet<JobStatus> = new Set(["succeeded", "failed_permanent", "cancelled"])
export const isTerminal = (status: JobStatus) => terminal.has(status)

/** What wakes a waiter: its job finished (as read), or something the waiter should read again for. */
type Wake = { readonly _tag: "Finished"; readonly job: Job } | { readonly _tag: "ReadAgain" }
const readAgain: Wake = { _tag: "ReadAgain" }

/** Every waiter on `*`: the notification did not list its ids. */
const everyone = "*"

/** How long the finished-jobs gate stays open after the last wait ended. */
export const gateLinger = "10 seconds"

const make = Effect.gen(function* () {
  const repo = yield* JobRepo
  const scope = yield* Effect.scope
  // the background fibers run with the layer's services, not those of the request that starts them
  const context = yield* Effect.context<Notifications>()
  const waiting = new Map<string, Set<Deferred.Deferred<Wake>>>()
  let waiters = 0
  const signals = yield* Queue.unbounded<string>()
  // the database notifies finished jobs only while this gate is open (migrations/0008): held from the
  // first wait until `gateLinger` after the last; (re)opened, it may have missed some: everyone reads again
  const gate = yield* GateKeeper.make("finished", gateLinger, () =>
    Queue.offer(signals, everyone).pipe(Effect.asVoid)
  )

  /** Reads the waited-for jobs a burst of notifications names, in one statement, and wakes their waiters. */
  const recheck = (payloads: ReadonlyArray<string>) =>
    Effect.gen(function* () {
      const named = payloads.includes(everyone)
        ? [...waiting.keys()]
        : [...new Set(payloads.flatMap((p) => p.split(",")))].filter((id) => waiting.has(id))
      if (named.length === 0) return
      const jobs = new Map((yield* readMany(named)).map((job) => [job.id as string, job]))
      for (const id of named) {
        const job = jobs.get(id)
        if (job !== undefined && !isTerminal(job.status)) continue
        const wake: Wake = job === undefined ? readAgain : { _tag: "Finished", job }
        for (const deferred of waiting.get(id) ?? []) Deferred.doneUnsafe(deferred, Effect.succeed(wake))
      }
    })

  const readMany = (ids: ReadonlyArray<string>) =>
    repo
      .getMany(ids)
      .pipe(Effect.retry({ schedule: decorrelatedJitter({ base: "20 millis", cap: "1 second" }), times: 5 }))

  const rechecking = Queue.takeAll(signals).pipe(
    Effect.flatMap(recheck),
    Effect.catch((error: SqlError.SqlError) =>
      Effect.logWarning("reading waited-for jobs failed; their waits end at their timeouts", error.message)
    ),
    Effect.forever
  )
  const listening = subscribe(
    channels.finished,
    (payload) => Queue.offer(signals, payload).pipe(Effect.asVoid),
    // a notification may have been lost while (re)connecting: everyone reads again
    Queue.offer(signals, everyone).pipe(Effect.asVoid)
  )

  let started = false
  const start = Effect.suspend(() => {
    if (started) return Effect.void
    started = true
    return Effect.all(
      [
        Effect.forkIn(
          rechecking.pipe(Effect.annotateLogs({ module: "Waiters" }), Effect.provideContext(context)),
          scope
        ),
        Effect.forkIn(listening.pipe(Effect.provideContext(context)), scope)
      ],
      { discard: true }
    )
  })

  // the layer closing (shutdown) ends every wait, and any that starts later at once: each waiter answers
  // with its job as it stands, and no wait holds up the drain
  let closed = false
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      closed = true
      for (const set of waiting.values())
        for (const deferred of set) Deferred.doneUnsafe(deferred, Effect.succeed(readAgain))
    })
  )

  /** Registers a waiter for `id` until the scope closes. */
  const register = (id: string): Effect.Effect<Deferred.Deferred<Wake>, never, Scope.Scope> =>
    Effect.acquireRelease(
      Effect.andThen(
        start,
        Effect.sync(() => {
          const deferred = Deferred.makeUnsafe<Wake>()
          const set = waiting.get(id) ?? new Set()
          set.add(deferred)
          waiting.set(id, set)
          waiters++
          if (closed) Deferred.doneUnsafe(deferred, Effect.succeed(readAgain))
          return deferred
        })
      ),
      (deferred) =>
        Effect.sync(() => {
          const set = waiting.get(id)
          if (set?.delete(deferred)) waiters--
          if (set?.size === 0) waiting.delete(id)
        })
    )

  /**
   * Waits up to `timeout` for job `id` to be terminal, reading it with `read` (which fails when the job is
   * unknown): at once when it already is; otherwise subscribed first, then read, so a job that finishes in
   * between is never missed. At the timeout, the job as it stands.
   */
  const awaitJob = <E, R>(
    id: string,
    timeout: Duration.Input,
    read: (id: string) => Effect.Effect<Job, E, R>
  ): Effect.Effect<WaitOutcome, E, R> =>
    Effect.scoped(
      Effect.gen(function* () {
        // the gate open, then the waiter registered, then the read: a job that finishes after the read
        // notifies, and the notification finds the waiter (the gate first: a wait counted as registered is
        // past it, and reads at once, as before the gate)
        // the listener starts first (with the first wait), while the gate opens
        yield* start
        if (!closed)
          yield* gate.enter.pipe(
            Effect.catch((error: SqlError.SqlError) =>
              Effect.logWarning(
                "could not open the finished-jobs gate; this wait ends at its timeout",
                error.message
              )
            )
          )
        // the database notifies ids in lower case; a client may have written its id in upper case
        const woken = yield* register(id.toLowerCase())
        const job = yield* read(id)
        if (isTerminal(job.status)) return { job, finished: true }
        const wake = yield* Deferred.await(woken).pipe(Effect.timeoutOption(timeout))
        if (Option.isSome(wake) && wake.value._tag === "Finished")
          return { job: wake.value.job, finished: true }
        // timed out, gone, or shutting down: the job as it stands now (at shutdown, as last read when the
        // database is closing under the read: the pool may close while the API drains)
        const now = yield* closed ? read(id).pipe(Effect.orElseSucceed(() => job)) : read(id)
        return { job: now, finished: isTerminal(now.status) }
      })
    )

  return {
    awaitJob,
    /** Waiters registered now (0 once every wait has ended, however it ended). */
    size: Effect.sync(() => waiters)
  }
})

export class Waiters extends Context.Service<Waiters, Effect.Success<typeof make>>()("jobq/Waiters") {
  static readonly layer = Layer.effect(Waiters, make)
}
