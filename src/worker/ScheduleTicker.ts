/**
 * Cron in the worker: at start, checks every schedule defined in code (`CodeSchedules`) against the kinds
 * and upserts them (an operator's pause stays; a bad one fails the start, named); then, while this worker
 * is the elected maintainer, ticks every second (`Scheduler.tick`: one job per due slot, the database
 * refusing a second) and prunes `schedule_fires` rows past their keep time.
 */
import { Cause, Duration, Effect, Exit, Metric, Option, Schedule, type Scope } from "effect"
import type { SqlError } from "effect/sql"
import type { Issue } from "../domain/errors.ts"
import { CodeSchedules, InvalidSchedule } from "../domain/Schedule.ts"
import { ScheduleControl } from "../queue/ScheduleControl.ts"
import { firesPruneBatch, ScheduleRepo } from "../queue/ScheduleRepo.ts"
import { Scheduler } from "../queue/Scheduler.ts"
import type { Leader } from "./Leader.ts"
import { scheduleFires, scheduleSkipped } from "./WorkerMetrics.ts"

/** How often the maintainer ticks: every second, so a seconds field fires within a second of its slot. */
export const tickInterval = Duration.seconds(1)

/** Checks and upserts the code's schedules; fails naming every invalid one. */
export const upsertCodeSchedules = Effect.gen(function* () {
  const defined = Option.getOrElse(yield* Effect.serviceOption(CodeSchedules), () => [])
  if (defined.length === 0) return
  const control = yield* ScheduleControl
  const problems: Array<string> = []
  const bad: Array<string> = []
  const issues: Array<Issue> = []
  const names = new Set<string>()
  for (const schedule of defined) {
    if (names.has(schedule.name)) {
      problems.push(`schedule "${schedule.name}" is defined twice`)
      bad.push(schedule.name)
      issues.push({ path: [schedule.name, "name"], message: "defined twice" })
    }
    names.add(schedule.name)
    const checked = yield* Effect.exit(control.check(schedule, "code"))
    if (Exit.isFailure(checked)) {
      const error = Cause.findErrorOption(checked.cause)
      if (error._tag === "Some") {
        problems.push(error.value.message)
        bad.push(error.value.name)
        for (const issue of error.value.issues)
          issues.push({ ...issue, path: [error.value.name, ...issue.path] })
      } else return yield* Effect.failCause(checked.cause)
    }
  }
  // a typed failure: the program reports it as one line and exits 1 (platform/Main.ts)
  if (problems.length > 0)
    return yield* Effect.fail(
      new InvalidSchedule({
        name: bad.join(", "),
        issues,
        message: `invalid schedules in code (nothing was upserted): ${problems.join("; ")}`
      })
    )
  const upsertAll = Effect.gen(function* () {
    for (const schedule of defined)
      yield* control
        .define(schedule, "code")
        .pipe(Effect.catchTags({ InvalidSchedule: Effect.die, ScheduleNotFound: Effect.die }))
    yield* Effect.logInfo(`upserted ${defined.length} schedules defined in code: ${[...names].join(", ")}`)
  })
  // the database may be down as the worker starts: the start goes on (as the pool's does), and the upsert
  // is tried again in the background until it lands
  yield* upsertAll.pipe(
    Effect.catchTag("SqlError", (error) =>
      Effect.logWarning("upserting the schedules defined in code failed; trying again", error.message).pipe(
        Effect.andThen(
          upsertAll.pipe(
            Effect.retry(Schedule.min([Schedule.exponential("500 millis"), Schedule.spaced("30 seconds")])),
            Effect.annotateLogs({ module: "ScheduleTicker", fiber: "upsert" }),
            Effect.forkScoped
          )
        )
      )
    )
  )
})

export const start = (
  leader: Leader["Service"]
): Effect.Effect<
  void,
  SqlError.SqlError | InvalidSchedule,
  Scope.Scope | ScheduleControl | Scheduler | ScheduleRepo
> =>
  Effect.gen(function* () {
    yield* upsertCodeSchedules
    const scheduler = yield* Scheduler
    const repo = yield* ScheduleRepo
    const tick = Effect.gen(function* () {
      const summary = yield* scheduler.tick
      if (summary.fired > 0) yield* Metric.update(scheduleFires, summary.fired)
      if (summary.skippedOverlap > 0)
        yield* Metric.update(
          Metric.withAttributes(scheduleSkipped, { reason: "overlap" }),
          summary.skippedOverlap
        )
      if (summary.skippedCatchUp > 0) {
        yield* Metric.update(
          Metric.withAttributes(scheduleSkipped, { reason: "catch_up" }),
          summary.skippedCatchUp
        )
        yield* Effect.logWarning(
          `skipped ${summary.skippedCatchUp} missed cron slots per the catch-up policies`
        )
      }
      if (summary.broken.length > 0)
        yield* Effect.logError(
          `schedules whose expression no longer parses, set aside: ${summary.broken.join(", ")}`
        )
    })
    yield* leader.periodic("cron", tickInterval, tick)
    const prune = Effect.gen(function* () {
      for (;;) {
        const n = yield* repo.pruneFires
        if (n < firesPruneBatch || !(yield* leader.isLeader)) return
      }
    })
    yield* leader.periodic("prune-schedule-fires", Duration.minutes(1), prune)
  })
