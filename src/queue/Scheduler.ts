/**
 * The cron tick: fires every due slot of every unpaused schedule, at the time the `Clock` says (so tests
 * drive it with `TestClock`). The elected maintainer runs it every second (`worker/ScheduleTicker.ts`), but
 * nothing here relies on that: each schedule is handled in its own transaction holding its row
 * (`FOR UPDATE SKIP LOCKED`, so a second ticker passes it by), and each slot's job is inserted by
 * `ScheduleRepo.fireSlot`, which the primary key of `schedule_fires` lets through once per (schedule, slot)
 * whoever calls it. Overlap `skip` reads the previous run's status under the same row lock.
 */
import { Clock, Context, type Cron, Effect, Layer, Result } from "effect"
import { SqlClient } from "effect/sql"
import { parseCron } from "../domain/Schedule.ts"
import { ScheduleRepo, type ScheduleRow } from "./ScheduleRepo.ts"
import { plan } from "./Slots.ts"

/** Schedules one tick handles at most; the rest are due on the next tick. */
export const schedulesPerTick = 500

export interface TickSummary {
  /** Jobs enqueued, one per slot. */
  readonly fired: number
  /** Slots skipped because the previous run was still queued, retrying or running. */
  readonly skippedOverlap: number
  /** Missed slots the catch-up policy (or the backfill window) skipped. */
  readonly skippedCatchUp: number
  /** Schedules whose expression no longer parses (set aside: next_at cleared), by name. */
  readonly broken: ReadonlyArray<string>
}

/** The slots due, or undefined when the expression cannot be followed (`Cron.next` found no date). */
const planOrUndefined = (cron: Cron.Cron, row: ScheduleRow, now: Date) => {
  try {
    return plan(cron, row.cursorAt, now, row.catchUp, row.backfillMs)
  } catch {
    return undefined
  }
}

const make = Effect.gen(function* () {
  const repo = yield* ScheduleRepo
  const sql = yield* SqlClient.SqlClient

  const tickOne = (name: string, now: Date) =>
    sql.withTransaction(
      Effect.gen(function* () {
        const row = yield* repo.lockDue(name, now)
        if (row === undefined) return { fired: 0, skippedOverlap: 0, skippedCatchUp: 0, broken: false }
        const cron = parseCron(row.expression, row.timeZone)
        const slots = Result.isSuccess(cron) ? planOrUndefined(cron.success, row, now) : undefined
        if (slots === undefined) {
          // set aside (next_at null) until redefined: one broken schedule must not stop the others
          yield* repo.advance(name, row.cursorAt, null, undefined)
          return { fired: 0, skippedOverlap: 0, skippedCatchUp: 0, broken: true }
        }
        let busy =
          row.overlap === "skip" && row.lastJobId !== null ? yield* repo.isBusy(row.lastJobId) : false
        let fired = 0
        let skippedOverlap = 0
        let lastRun: { jobId: string; slot: Date } | undefined
        for (const slot of slots.fire) {
          if (busy) {
            if (yield* repo.skipSlot(name, slot)) skippedOverlap++
            continue
          }
          const jobId = yield* repo.fireSlot(name, slot)
          if (jobId === undefined) continue
          fired++
          lastRun = { jobId, slot }
          busy = row.overlap === "skip"
        }
        yield* repo.advance(name, slots.cursor, slots.next, lastRun)
        return { fired, skippedOverlap, skippedCatchUp: slots.skipped, broken: false }
      })
    )

  /** Fires what is due now over every schedule; answers what it did. */
  const tick = Effect.gen(function* () {
    const now = new Date(yield* Clock.currentTimeMillis)
    const names = yield* repo.due(now, schedulesPerTick)
    let fired = 0
    let skippedOverlap = 0
    let skippedCatchUp = 0
    const broken: Array<string> = []
    for (const name of names) {
      const one = yield* tickOne(name, now)
      fired += one.fired
      skippedOverlap += one.skippedOverlap
      skippedCatchUp += one.skippedCatchUp
      if (one.broken) broken.push(name)
    }
    return { fired, skippedOverlap, skippedCatchUp, broken } satisfies TickSummary
  })

  return { tick }
})

export class Scheduler extends Context.Service<Scheduler, Effect.Success<typeof make>>()("jobq/Scheduler") {
  static readonly layer = Layer.effect(Scheduler, make).pipe(Layer.provideMerge(ScheduleRepo.layer))
}
