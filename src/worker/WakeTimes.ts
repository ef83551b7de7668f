/**
 * Times (epoch ms) when jobs this worker knows of become ready: retries it scheduled, delayed jobs that
 * NOTIFY announced. The fetch fiber sleeps until the earliest of them or the poll interval, whichever
 * comes first, so a delayed job starts when it is due rather than at the next poll.
 */
const capacity = 1024
// Wake a little after the due time: a timer may fire early and the database clock may run a little behind
// ours; a claim that still finds nothing falls back to polling.
const slackMs = 5

export const make = (pollMs: number) => {
  const times: Array<number> = []
  return {
    add: (epochMs: number) => {
      if (times.length >= capacity && epochMs >= times[times.length - 1]!) return
      const at = times.findIndex((t) => t > epochMs)
      times.splice(at === -1 ? times.length : at, 0, epochMs)
      if (times.length > capacity) times.pop()
    },
    /** How long to sleep before looking again. */
    nextWaitMs: () => {
      const now = Date.now()
      while (times.length > 0 && times[0]! + slackMs < now) times.shift()
      return Math.min(pollMs, times.length === 0 ? pollMs : times[0]! + slackMs - now)
    }
  }
}
