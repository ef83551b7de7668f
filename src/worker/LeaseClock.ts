/**
 * When the leases this worker holds run out, as far as it knows. The jobs it claims hold no lease of their
 * own: its row in `workers` holds them all, for `WORKER_LEASE` after each heartbeat (`Heartbeat`). So every
 * held job runs out at the same moment: the time the worker sent its last heartbeat that answered, plus the
 * lease, which is never later than the database's own expiry (counted from when the statement ran). A job
 * is held by the row only when its claim was sent after the row's current lease began: a heartbeat that
 * finds the lease had run out begins a new one, and the jobs claimed before it are lost (the rescuer takes
 * them back). A worker that cannot heartbeat (it lost its database connection, or stalled) must stop its
 * jobs before the lease runs out: past it, a job may be rescued and run again elsewhere, and it no longer
 * counts against its queue's concurrency limit. All times are `performance.now()`.
 */

/** How often the lease is looked after, from the settings (milliseconds). */
export const timing = (leaseMs: number, renewIntervalMs: number, heartbeatMs: number) => {
  /** The lease watch looks this often, and stops a job two looks before its lease runs out. */
  const watchMarginMs = Math.min(renewIntervalMs, leaseMs / 4)
  /**
   * The heartbeat extends the lease once it has less than this left: half a lease, and never so late that the
   * lease watch could stop the jobs first (two of its looks plus two renewal intervals).
   */
  const renewAheadMs = Math.min(leaseMs, Math.max(leaseMs / 2, 2 * watchMarginMs + 2 * renewIntervalMs))
  return {
    watchMarginMs,
    /** Between two heartbeats that answered: `WORKER_HEARTBEAT`, or sooner when the lease asks for it. */
    beatEveryMs: Math.max(1, Math.min(heartbeatMs, leaseMs - renewAheadMs)),
    /** After a heartbeat that failed, the next one comes this soon. */
    retryEveryMs: Math.max(1, Math.min(heartbeatMs, renewIntervalMs))
  }
}

/** A claimed job, as the clock keeps it: by the object, one attempt, not by its id (a job claimed again after a
 *  rescue is another attempt, held under the new lease while the old one may still be stopping). */
export interface LeasedJob {
  readonly id: string
}

export const make = (leaseMs: number) => {
  /** The moment the worker's lease runs out (0: no heartbeat answered yet). */
  let until = 0
  /** The moment the current lease began, as the worker knows it: when the heartbeat that began it answered. */
  let began = Number.POSITIVE_INFINITY
  /**
   * Each claim's jobs with the moment its statement was sent, oldest first: a claim is kept while one of its
   * jobs is held. Kept per claim, not per job: a drain lands tens of thousands of jobs a second, and a map
   * entry written and deleted for each showed in the worker's CPU profile (paired drains could not resolve
   * the difference, bench/RESULTS.md).
   */
  let claims: Array<{ readonly askedAt: number; readonly jobs: ReadonlyArray<LeasedJob> }> = []
  return {
    /**
     * A heartbeat sent at `askedAt` answered at `answeredAt`; `continued`: the lease it extended had not run
     * out, else it began a new one, which holds none of the jobs claimed before.
     */
    beat: (askedAt: number, answeredAt: number, continued: boolean) => {
      if (!continued) began = answeredAt
      until = Math.max(until, askedAt + leaseMs)
    },
    /** These jobs were claimed by a statement sent at `askedAt`. */
    leased: (jobs: ReadonlyArray<LeasedJob>, askedAt: number) => {
      if (jobs.length > 0) claims.push({ askedAt, jobs })
    },
    /**
     * The held jobs whose lease runs out before `before`, or already did; claims none of whose jobs is held are
     * forgotten. `isHeld` is asked of each attempt: an older attempt of a job held again is not.
     */
    expiring: <J extends LeasedJob>(before: number, isHeld: (job: J) => boolean): Array<J> => {
      const expired: Array<J> = []
      const kept: typeof claims = []
      for (const claim of claims) {
        const jobs = claim.jobs as ReadonlyArray<J>
        if (claim.askedAt < began || until < before) {
          const count = expired.length
          for (const job of jobs) if (isHeld(job)) expired.push(job)
          if (expired.length > count) kept.push(claim)
        } else if (jobs.some(isHeld)) kept.push(claim)
      }
      claims = kept
      return expired
    },
    /** The moment the lease runs out (0 before the first heartbeat answered). */
    until: () => until
  }
}

export type LeaseClock = ReturnType<typeof make>
