/**
 * How many jobs a worker claims ahead of its free slots when `WORKER_PREFETCH=auto`: enough to keep its
 * slots busy while the next claim is in flight, and no more. With jobs that run for microseconds that is
 * the ceiling (big claims spread a claim's fixed cost over many jobs); with jobs that run for longer than a
 * claim takes it is none, so that a job never waits in one worker's buffer while another worker is idle.
 *
 * The buffer is sized in time: `concurrency × T ÷ job time` jobs are what the slots finish in T (by Little's
 * law, whatever part of a job's time is a wait for the CPU). A job that runs no longer than a claim takes
 * gets T = `heldWorkMs` (250 ms, or two claims if that is longer), at most the ceiling: for a no-op that is
 * the ceiling, while jobs of ~10 ms are held 200 at a time at concurrency 8 (250 ms of work, where a count
 * alone let one worker hold 1,000 of them, 1.25 s, while another idled). Longer: T = two claims, at most
 * twice the concurrency and falling to none. Both times are moving averages of what this worker observed.
 * Before it has seen a job end it claims for free slots only.
 */
export const make = (concurrency: number, ceiling: number) => {
  const weight = 0.1
  // a handler's time counts from its fiber's creation, so a no-op's includes a few milliseconds of
  // scheduling when the worker is busy: jobs this short are short whatever the claim time
  const shortMs = 2
  // the most work one worker holds in its buffer while jobs are short (see above)
  const heldWorkMs = 250
  let runMs: number | undefined
  let claimMs: number | undefined
  return {
    /** A handler ran for `ms`. */
    ran: (ms: number) => {
      runMs = runMs === undefined ? ms : runMs + weight * (ms - runMs)
    },
    /** A claim statement took `ms`. */
    claimed: (ms: number) => {
      claimMs = claimMs === undefined ? ms : claimMs + weight * (ms - claimMs)
    },
    /** Jobs to hold beyond the free slots now. */
    prefetch: (): number => {
      if (runMs === undefined) return 0
      const claim = claimMs ?? 1
      const held = runMs <= Math.max(claim, shortMs) ? Math.max(heldWorkMs, 2 * claim) : 2 * claim
      const wanted = (concurrency * held) / Math.max(runMs, 0.001)
      return Math.max(0, Math.min(ceiling, Math.floor(wanted)))
    }
  }
}
