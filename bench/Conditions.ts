/** The notes RESULTS.md opens with: what the run could not control, and what it leaves unmeasured. */

export const preface = (quick: boolean) =>
  [
    "**Conditions.** This 2-core machine is shared: other engineers run their test suites and type checks on it during the run (see the load average below), so absolute figures move by tens of percent between runs; paired ratios (one system's run right after the other's) are steadier than the absolute numbers. Every commit here waits for a WAL flush (`synchronous_commit = on`, the default), which makes one-job-at-a-time paths commit-bound.",
    "",
    "**Not measured in this run:** scenario 7 (end-to-end steady load through the API with workers running, and the peak RSS of API and worker under load) is not built yet; no CPU profile of the worker process is included (see the closing note for where it points).",
    ...(quick
      ? [
          "",
          "**Quick mode:** smaller backlogs, fewer concurrency levels and shorter runs, as each section says."
        ]
      : [])
  ].join("\n")

export const closing = [
  "## Why our drain is behind, and what would close the gap",
  "",
  "- The database is not the bottleneck: the claim of 32 jobs executes in well under a millisecond (profile above), and pgbench doing insert + claim + complete in batches of 100 runs several times faster than our worker.",
  "- Our worker claims only as many jobs as it has free slots, and a slot frees only after its completion has committed. Under a backlog this settles into many small claims (often 1–2 jobs after each completion batch) and small completion batches: two commits per handful of jobs. graphile-worker's local queue instead locks 500 jobs per fetch and pg-boss fetches 500 per call, so both pay one claim per hundreds of jobs.",
  "- What would close it: claim ahead of the free slots (a bounded local buffer of already-leased jobs, refilled when it falls below a low-water mark, leases renewed like running jobs, released on shutdown), and let completions batch across the whole pool with a short, bounded linger. Both keep the semantics: a job is reported done only after its completion commits, and a crash between claim and completion leaves a leased job the rescuer returns to the queue.",
  "- Per-job overhead inside the worker (metrics updates, FiberMap bookkeeping, Schema decode, log annotations) matters at the peers' rates (25–50 µs a job on 2 shared cores); a CPU profile of `bun --cpu-prof src/worker.ts` under the drain is the next measurement to take."
].join("\n")
