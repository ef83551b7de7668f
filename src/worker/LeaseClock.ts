/**
 * When each lease this worker holds runs out, as far as it knows: the moment it asked for the lease (a
 * claim or a renewal that succeeded) plus `WORKER_LEASE`. That is never later than the database's own
 * expiry, which counts from when the statement ran. A worker that cannot renew (it lost its database
 * connection) must stop a job before its lease runs out: past it, the job may be rescued and run again
 * elsewhere, and it no longer counts against its queue's concurrency limit.
 */
export const make = (leaseMs: number) => {
  const until = new Map<string, number>()
  return {
    /** These jobs were leased (claimed or renewed) by a statement sent at `askedAt` (performance.now()). */
    leased: (ids: Iterable<string>, askedAt: number) => {
      for (const id of ids) until.set(id, askedAt + leaseMs)
    },
    /** Whether the job's lease runs out before `before` (performance.now()), or is unknown. */
    endsBefore: (id: string, before: number): boolean => (until.get(id) ?? 0) < before,
    /**
     * The held jobs whose lease runs out before `before` (performance.now()); jobs no longer held are
     * forgotten on the way.
     */
    expiring: (before: number, isHeld: (id: string) => boolean): Array<string> => {
      const ids: Array<string> = []
      for (const [id, at] of until) {
        if (!isHeld(id)) until.delete(id)
        else if (at < before) ids.push(id)
      }
      return ids
    }
  }
}
