/**
 * Keeps a worker's `EventsFollowed` cell saying whether anyone follows events in its database (looked up
 * once a second), so that its claims and completions write their events as one row per statement only while
 * someone follows (migrations/0012_event_batches.sql), and pay nothing for that form otherwise. A stale
 * answer costs time, never an event: the batch form checks the gate itself, and the plain form leaves a
 * follower's events to the row triggers. When the look fails, the cell says "maybe" (the batch form).
 */
import { Duration, Effect, Schedule } from "effect"
import type { JobRepo } from "../queue/JobRepo.ts"

export const followWatch = (
  repo: JobRepo["Service"],
  cell: { followed: boolean },
  every: Duration.Input = Duration.seconds(1)
) =>
  repo.followersPresent.pipe(
    Effect.catchCause(() => Effect.succeed(true)),
    Effect.tap((present) =>
      Effect.sync(() => {
        cell.followed = present
      })
    ),
    Effect.repeat(Schedule.spaced(every)),
    Effect.asVoid,
    Effect.annotateLogs({ module: "FollowWatch" })
  )
