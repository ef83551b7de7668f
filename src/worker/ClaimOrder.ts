/**
 * The order a worker's claims land in. A worker serving short jobs keeps up to two claims in flight (the
 * fetch loop's and the second stream's, `WorkerPool`), and two claims on two connections run side by side in
 * the database: each locks the first ready rows the other has not locked, so either may hold the earlier
 * jobs, whichever was sent first. So claims land in the order they were sent (one that came back early waits
 * for the ones before it; a failed one lands nothing, in its turn), and their jobs join the unstarted part of
 * the buffer in the queue's order (`mergeInOrder`): priority, then `run_at`, then id, as the claim reads the
 * ready index. A job that started before an earlier one landed stays started: the same as between two
 * workers, and why a worker of concurrency 1, for which order is the point, claims one statement at a time.
 */

/** What the queue's order compares. */
export interface Keyed {
  readonly id: string
  readonly priority: number
  readonly runAt: Date
}

/** Whether `a` comes before `b` in the queue's order (the claim's `ORDER BY priority, run_at, id`). */
export const before = (a: Keyed, b: Keyed): boolean => {
  if (a.priority !== b.priority) return a.priority < b.priority
  const at = a.runAt.getTime() - b.runAt.getTime()
  if (at !== 0) return at < 0
  return a.id < b.id
}

/**
 * `waiting` followed by `landed`, in the queue's order; both are already in it (a claim answers its jobs in
 * that order). Answers `waiting` with `landed` appended when they follow it, the usual case, else a merge.
 */
export const mergeInOrder = <J extends Keyed>(waiting: Array<J>, landed: ReadonlyArray<J>): Array<J> => {
  const last = waiting[waiting.length - 1]
  const first = landed[0]
  if (last === undefined || first === undefined || before(last, first)) {
    for (const job of landed) waiting.push(job)
    return waiting
  }
  const merged: Array<J> = []
  let i = 0
  let j = 0
  while (i < waiting.length && j < landed.length) {
    if (before(landed[j]!, waiting[i]!)) merged.push(landed[j++]!)
    else merged.push(waiting[i++]!)
  }
  while (i < waiting.length) merged.push(waiting[i++]!)
  while (j < landed.length) merged.push(landed[j++]!)
  return merged
}

/** Numbers claims as they are sent and lands them in that order. */
export const make = () => {
  let sent = 0
  let landed = 0
  const waiting = new Map<number, () => void>()
  return {
    /** The number of a claim about to be sent. */
    send: (): number => sent++,
    /** Claim `number` came back: `landIt` runs now if every claim sent before it has landed, else once they have. */
    landed: (number: number, landIt: () => void) => {
      if (number !== landed) {
        waiting.set(number, landIt)
        return
      }
      landIt()
      landed++
      for (let next = waiting.get(landed); next !== undefined; next = waiting.get(landed)) {
        waiting.delete(landed)
        next()
        landed++
      }
    },
    /** Claims sent and not yet landed. */
    pending: () => sent - landed
  }
}

export type ClaimOrder = ReturnType<typeof make>
