/**
 * How many jobs a worker claims ahead of its free slots when `WORKER_PREFETCH=auto`: enough to keep its
 * slots busy while the next claim is in flight, and no more. With jobs that run for microseconds that is
 * the ceiling (big claims spread a claim's fixed cost over many jobs); with jobs that run for longer than a
 * claim takes it is none, so that a job never waits in one worker's buffer while another worker is idle.
 *
 * A job that runs no longer than a claim takes: the ceiling (the slots empty the buffer faster than claims
 * refill it). Longer: concurrency × (2 × claim time) ÷ job time, the jobs the slots finish during two claims,
 * at most twice the concurrency and falling to none. Both times are moving averages of what this worker
 * observed (a handler's time under load includes its waits for the CPU). Before it has seen a job end it
 * claims for free slots only.
 */
export const make = (concurrency: number, ceiling: number) => {
  const weight = 0.1
  // a handler's time counts from its fiber's creation, so a no-op's includes a few milliseconds of
  // scheduling when the worker is busy: jobs this short are short whatever the claim time
  const shortMs = 2
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
      if (runMs <= Math.max(claim, shortMs)) return ceiling
      const wanted = (concurrency * 2 * claim) / Math.max(runMs, 0.001)
      return Math.max(0, Math.min(ceiling, Math.floor(wanted)))
    }
  }
}
