/**
 * Steering queues: pause, resume, limits, and looking at queues and workers. The rules on top of `QueueRepo`: a name
 * follows the enqueue rule, limits and pause texts have bounds, pause and resume are idempotent and say
 * what they did. Each operation is plain SQL on the current connection, so it joins the caller's
 * transaction (`sql.withTransaction`), notification included (delivered at commit).
 * The `Queue` service offers these operations too.
 */
import { Cause, Context, Effect, Exit, Layer, Schema } from "effect"
import type { SqlError } from "effect/sql"
import { InvalidQueueSettings, type Issue, QueueNotFound } from "../domain/errors.ts"
import { QueueName } from "../domain/Job.ts"
import { issuesOf } from "../domain/JobKind.ts"
import {
  ConcurrencyLimit,
  type LimitsChange,
  PausedBy,
  PauseReason,
  type QueueInfo,
  RateLimit
} from "../domain/Queues.ts"
import { QueueRepo } from "./QueueRepo.ts"
import { WorkerRepo } from "./WorkerRepo.ts"

export const maxQueuesPage = 500

export interface PauseOptions {
  readonly reason?: string | undefined
  /** Who pauses, as the caller says (the API does not check it). */
  readonly by?: string | undefined
}

export interface PauseOutcome {
  /** `already_paused`: it was paused before; its pause time stays, its reason too unless a new one was given. */
  readonly outcome: "paused" | "already_paused"
  readonly message: string
  readonly queue: QueueInfo
}

export interface ResumeOutcome {
  readonly outcome: "resumed" | "not_paused"
  readonly message: string
  readonly queue: QueueInfo
}

export interface QueuePage {
  readonly queues: ReadonlyArray<QueueInfo>
  /** Pass as `cursor` for the next page; null on the last page. */
  readonly nextCursor: string | null
}

/** Issues of `value` against `schema`, under `path`; none when it is valid. */
const check = (schema: Schema.Codec<unknown, unknown>, value: unknown, path: string): Array<Issue> => {
  const exit = Schema.decodeUnknownExit(schema)(value, { errors: "all" })
  if (Exit.isSuccess(exit)) return []
  const error = Cause.findErrorOption(exit.cause)
  const issues = error._tag === "Some" ? issuesOf(error.value) : [{ path: [], message: "invalid" }]
  return issues.map((issue) => ({ path: [path, ...issue.path], message: issue.message }))
}

const validated = (issues: ReadonlyArray<Issue>) =>
  issues.length === 0
    ? Effect.void
    : Effect.fail(
        new InvalidQueueSettings({
          issues,
          message: issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")
        })
      )

const checkName = (name: string) => check(QueueName as Schema.Codec<unknown, unknown>, name, "name")

const make = Effect.gen(function* () {
  const repo = yield* QueueRepo
  const workers = yield* WorkerRepo

  const found = (name: string) =>
    Effect.flatMap(repo.get(name), (queue) =>
      queue === undefined ? Effect.fail(QueueNotFound.of(name)) : Effect.succeed(queue)
    )

  /** The queue; `QueueNotFound` when no job was ever enqueued to it and no operator set it. */
  const getQueue = (
    name: string
  ): Effect.Effect<QueueInfo, QueueNotFound | InvalidQueueSettings | SqlError.SqlError> =>
    Effect.andThen(validated(checkName(name)), found(name))

  const listQueues = (
    options: { readonly cursor?: string | undefined; readonly limit?: number | undefined } = {}
  ) =>
    Effect.gen(function* () {
      const asked = options.limit === undefined || Number.isNaN(options.limit) ? maxQueuesPage : options.limit
      const limit = Math.min(maxQueuesPage, Math.max(1, Math.floor(asked)))
      const queues = yield* repo.list(limit + 1, options.cursor)
      const page = queues.slice(0, limit)
      return {
        queues: page,
        nextCursor: queues.length > limit ? page[page.length - 1]!.name : null
      } satisfies QueuePage
    })

  /**
   * Pauses the queue: no worker claims its jobs from the moment this commits (the claim statement reads the
   * pause), jobs already running finish, enqueueing goes on. Pausing a queue nobody used yet is allowed.
   */
  const pause = (name: string, options: PauseOptions = {}) =>
    Effect.gen(function* () {
      yield* validated([
        ...checkName(name),
        ...(options.reason === undefined ? [] : check(PauseReason, options.reason, "reason")),
        ...(options.by === undefined ? [] : check(PausedBy, options.by, "by"))
      ])
      const wasPaused = yield* repo.pause(name, options.reason ?? null, options.by ?? null)
      const queue = yield* found(name)
      const message = !wasPaused
        ? `queue "${name}" is paused`
        : options.reason === undefined
          ? `queue "${name}" was already paused; its pause and reason are unchanged`
          : `queue "${name}" was already paused; its pause time is unchanged, its reason replaced`
      return { outcome: wasPaused ? "already_paused" : "paused", message, queue } satisfies PauseOutcome
    }).pipe(
      Effect.withSpan("Queue.pause", { attributes: { "queue.name": name } }, { captureStackTrace: false })
    )

  /** Resumes the queue; idle workers hear of it at once (NOTIFY) and claim its jobs. */
  const resume = (name: string) =>
    Effect.gen(function* () {
      yield* validated(checkName(name))
      const wasPaused = yield* repo.resume(name)
      const queue = yield* found(name)
      return {
        outcome: wasPaused ? "resumed" : "not_paused",
        message: wasPaused ? `queue "${name}" is resumed` : `queue "${name}" was not paused; nothing changed`,
        queue
      } satisfies ResumeOutcome
    }).pipe(
      Effect.withSpan("Queue.resume", { attributes: { "queue.name": name } }, { captureStackTrace: false })
    )

  /**
   * Sets the queue's limits: `concurrencyLimit` (at most that many of its jobs hold a lease at once, over
   * every worker) and `rateLimit` (at most `max` start in any window of `per` ms). A field left out keeps
   * its value; null removes the limit. Jobs already running when a limit is set run on.
   */
  const setLimits = (name: string, change: LimitsChange) =>
    Effect.gen(function* () {
      yield* validated([
        ...checkName(name),
        ...(change.concurrencyLimit === undefined || change.concurrencyLimit === null
          ? []
          : check(ConcurrencyLimit, change.concurrencyLimit, "concurrencyLimit")),
        ...(change.rateLimit === undefined || change.rateLimit === null
          ? []
          : check(RateLimit as Schema.Codec<unknown, unknown>, change.rateLimit, "rateLimit"))
      ])
      yield* repo.setLimits(name, change)
      return yield* found(name)
    }).pipe(
      Effect.withSpan("Queue.setLimits", { attributes: { "queue.name": name } }, { captureStackTrace: false })
    )

  /**
   * Worker processes that heartbeated lately (up to 1,000, by id), with the jobs each holds a lease on now.
   * One that misses three heartbeats (`WORKER_HEARTBEAT`, 5 s by default) is no longer listed.
   */
  const listWorkers = workers.list

  return { getQueue, listQueues, pause, resume, setLimits, listWorkers }
})

export class QueueControl extends Context.Service<QueueControl, Effect.Success<typeof make>>()(
  "jobq/QueueControl"
) {
  static readonly layer = Layer.effect(QueueControl, make).pipe(
    Layer.provideMerge(Layer.merge(QueueRepo.layer, WorkerRepo.layer))
  )
}
