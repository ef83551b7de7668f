/**
 * Which slots of a schedule are due, and what its catch-up policy makes of them. Pure: the time is given,
 * so a test drives it with `TestClock` (through `Scheduler`) or plain dates. A slot is a time the
 * expression names, in the schedule's zone; the cursor is the latest slot (or instant) already handled.
 *
 * - A slot at most `onTimeMs` (1 minute) before `now` is on time; older ones were missed (no worker ticked).
 * - `none`: only on-time slots fire. `latest`: on-time slots fire, and when none is due, the most recent
 *   missed slot within the window fires once; the other missed slots are skipped. `all`: every due slot within the window fires, oldest first, at most
 *   `maxSlotsPerTick` per tick (the rest on the next ticks).
 * - The window is `max(backfill, onTimeMs)` back from `now`; slots before it are skipped whatever the policy.
 */
import { Cron } from "effect"
import { type CatchUp, onTimeMs } from "../domain/Schedule.ts"

/** Slots one tick fires per schedule at most (catch-up `all` after a long downtime). */
export const maxSlotsPerTick = 1000
/** Skipped slots counted one by one at most per tick; beyond, the count is a lower bound. */
const maxCounted = 10_000

export interface SlotPlan {
  /** The slots to fire, oldest first. */
  readonly fire: ReadonlyArray<Date>
  /** Due slots the catch-up policy skips (at least this many). */
  readonly skipped: number
  /** The new cursor: every slot up to it is handled once `fire` is. */
  readonly cursor: Date
  /** The first slot after the cursor. */
  readonly next: Date
}

export const plan = (
  cron: Cron.Cron,
  cursor: Date,
  now: Date,
  catchUp: CatchUp,
  backfillMs: number
): SlotPlan => {
  const windowStart = now.getTime() - (catchUp === "none" ? onTimeMs : Math.max(backfillMs, onTimeMs))
  let skipped = 0
  let slot = Cron.next(cron, cursor)
  // before the window: skipped whatever the policy
  while (slot.getTime() < windowStart && slot <= now && skipped < maxCounted) {
    skipped++
    slot = Cron.next(cron, slot)
  }
  if (slot.getTime() < windowStart && slot <= now) slot = Cron.next(cron, new Date(windowStart - 1))
  const due: Array<Date> = []
  if (catchUp === "latest") {
    // on-time slots fire; of the missed ones only the most recent, and only when no later slot fires
    const onTimeFrom = now.getTime() - onTimeMs
    let latest: Date | undefined
    let steps = 0
    while (slot <= now && steps < maxCounted) {
      if (slot.getTime() >= onTimeFrom) due.push(slot)
      else if (latest !== undefined) skipped++
      if (slot.getTime() < onTimeFrom) latest = slot
      slot = Cron.next(cron, slot)
      steps++
    }
    if (slot <= now) {
      // more slots in the window than we count: the latest one straight away
      const last = Cron.prev(cron, new Date(now.getTime() + 1))
      if (latest !== undefined) skipped++
      latest = undefined
      due.length = 0
      due.push(last)
    } else if (latest !== undefined) {
      if (due.length === 0) due.push(latest)
      else skipped++
    }
    return { fire: due.slice(-maxSlotsPerTick), skipped, cursor: now, next: Cron.next(cron, now) }
  }
  while (slot <= now && due.length < maxSlotsPerTick) {
    due.push(slot)
    slot = Cron.next(cron, slot)
  }
  // capped: the cursor stays at the last slot fired, the rest follow next tick
  const capped = slot <= now
  const last = capped ? due[due.length - 1]! : now
  return { fire: due, skipped, cursor: last, next: capped ? slot : Cron.next(cron, now) }
}

/** The next `count` slots after `after`. */
export const upcoming = (cron: Cron.Cron, after: Date, count: number): Array<Date> => {
  const slots: Array<Date> = []
  let at = after
  for (let i = 0; i < count; i++) {
    at = Cron.next(cron, at)
    slots.push(at)
  }
  return slots
}
