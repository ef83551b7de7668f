/**
 * How one worker honours paused and limited queues. The claim statements enforce both whatever the worker
 * knows (a pause binds every claim that starts after it committed); this keeps the worker's picture of the
 * queues, so that it
 *
 * - claims queue by queue (`JobRepo.claimFromQueues`) while some queue it serves is steered, instead of
 *   reading past that queue's backlog on every claim;
 * - claims from limited queues (`QueueRepo.claimLimited`) only while some queue it serves is limited;
 * - gives back the claimed-but-unstarted jobs of a queue that was just paused (`onPaused`);
 * - claims again at once when a queue is resumed or its limits change (`onChanged`).
 *
 * The picture is read from `queues` when the worker starts, on every `Notifier.queuesChanged`
 * notification (pause, resume, limits; the pool passes them on), when a job arrives in a queue it has not
 * seen, and every `refreshInterval` whatever happens (so a missed notification costs at most that long).
 */
import { Cause, type Duration, Effect, Schedule } from "effect"
import type { SqlError } from "effect/sql"
import type { ClaimedJob, JobRepo, LeaseMs } from "../queue/JobRepo.ts"
import { type QueueRepo, type SteeringRow, steeringRowsCap } from "../queue/QueueRepo.ts"

export interface SteeringOptions {
  readonly workerId: string
  /** The lease each claimed job gets; null: none of its own, the worker's row holds them (`Heartbeat`). */
  readonly leaseMs: LeaseMs
  /** The queues this worker serves; undefined: all. */
  readonly queues: ReadonlyArray<string> | undefined
  readonly refreshInterval: Duration.Duration
  readonly repo: JobRepo["Service"]
  readonly queueRepo: QueueRepo["Service"]
  /** Called with the served queues that are paused now and were not before. */
  readonly onPaused: (queues: ReadonlySet<string>) => Effect.Effect<void>
  /** Called when a served queue was resumed or its limits changed: worth claiming again. */
  readonly onChanged: Effect.Effect<void>
}

interface Picture {
  /** Every queue name, when there are at most `steeringRowsCap`. */
  readonly names: ReadonlySet<string> | undefined
  readonly paused: ReadonlySet<string>
  /** Limited and not paused. */
  readonly limited: ReadonlySet<string>
  /** The served queues to claim from one by one; undefined: no served queue is steered (plain claim). */
  readonly unsteered: ReadonlyArray<string> | undefined
}

const empty: Picture = { names: new Set(), paused: new Set(), limited: new Set(), unsteered: undefined }

const picture = (
  rows: ReadonlyArray<SteeringRow>,
  served: ReadonlyArray<string> | undefined,
  heard: ReadonlySet<string>
): Picture => {
  const serves = (name: string) => served === undefined || served.includes(name)
  const paused = new Set(rows.filter((r) => r.paused && serves(r.name)).map((r) => r.name))
  const limited = new Set(rows.filter((r) => r.limited && !r.paused && serves(r.name)).map((r) => r.name))
  if (rows.length > steeringRowsCap) return { names: undefined, paused, limited, unsteered: undefined }
  const steered = paused.size + limited.size > 0
  // a queue whose jobs were announced but that has no row yet (its row was deleted by hand) is claimed too
  const names = new Set([...rows.map((r) => r.name), ...heard])
  const unsteered = steered
    ? (served ?? [...names]).filter((name) => !paused.has(name) && !limited.has(name))
    : undefined
  return { names, paused, limited, unsteered }
}

export const make = (options: SteeringOptions) =>
  Effect.gen(function* () {
    const { workerId, leaseMs, repo } = options
    let current = empty
    /** Queues named by ready notifications that had no row when last read (at most `steeringRowsCap`). */
    const heard = new Set<string>()

    const refresh = Effect.gen(function* () {
      const next = picture(yield* options.queueRepo.steering, options.queues, heard)
      const before = current
      current = next
      const newlyPaused = new Set([...next.paused].filter((name) => !before.paused.has(name)))
      if (newlyPaused.size > 0) yield* options.onPaused(newlyPaused)
      const resumed = [...before.paused].some((name) => !next.paused.has(name))
      const limitsChanged =
        next.limited.size !== before.limited.size ||
        [...next.limited].some((name) => !before.limited.has(name))
      if (resumed || limitsChanged) yield* options.onChanged
    })

    const refreshQuietly = refresh.pipe(
      Effect.catchCause((cause) =>
        Effect.logWarning("reading the queues' settings failed", Cause.pretty(cause))
      )
    )

    yield* refreshQuietly
    yield* refreshQuietly.pipe(
      Effect.repeat(Schedule.spaced(options.refreshInterval)),
      Effect.annotateLogs({ module: "Steering", fiber: "refresh" }),
      Effect.forkScoped
    )

    return {
      /** Claims up to `limit` jobs of unpaused, unlimited queues this worker serves. */
      claim: (limit: number): Effect.Effect<ReadonlyArray<ClaimedJob>, SqlError.SqlError> => {
        const { unsteered } = current
        if (unsteered === undefined) return repo.claim(workerId, limit, leaseMs, options.queues)
        if (unsteered.length === 0) return Effect.succeed([])
        return repo.claimFromQueues(workerId, limit, leaseMs, unsteered)
      },
      /** Reads the queues' settings again now (a notification said they changed, or LISTEN reconnected). */
      refresh: refreshQuietly,
      isPaused: (queue: string) => current.paused.has(queue),
      isLimited: (queue: string) => current.limited.has(queue),
      hasLimited: () => current.limited.size > 0,
      /** Claims up to `room` jobs of the limited, unpaused queues this worker serves. */
      claimLimited: (room: number) => options.queueRepo.claimLimited(workerId, room, leaseMs, options.queues),
      /**
       * A job became ready in `queue`: when this worker claims queue by queue and has not seen that queue,
       * it reads the queues again first and adds the queue to the picture (a new queue is claimed from
       * only once it is in the picture).
       */
      onReady: (queue: string) => {
        if (current.unsteered === undefined || current.names === undefined || current.names.has(queue)) {
          return Effect.void
        }
        if (heard.size < steeringRowsCap) heard.add(queue)
        return refreshQuietly
      }
    }
  })

export type Steering = Effect.Success<ReturnType<typeof make>>
