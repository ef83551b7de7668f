/** The notes RESULTS.md opens with: what the run could not control, and what it leaves unmeasured. */

export const preface = (quick: boolean) =>
  [
    "**Conditions.** This 2-core machine is shared: other engineers run their test suites and type checks on it during the run (see the load average below), so absolute figures move by tens of percent between runs; paired ratios (one system's run right after the other's) are steadier than the absolute numbers. Every commit here waits for a WAL flush (`synchronous_commit = on`, the default), which makes one-job-at-a-time paths commit-bound.",
    "",
    "**Not measured in this run:** no CPU profile of the worker process is included (see the closing note for where it points).",
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
  "- The claim itself is cheap: 32 jobs are claimed in well under a millisecond of execution (profile above).",
  "- The schema caps the ceiling. pgbench running our own insert + claim + complete statements in batches of 100 stays below what graphile-worker drains in the same run: every state change of a `jobs` row updates `status` (indexed by `jobs_status_id_idx` and the predicate of `jobs_ready_idx`) and `lease_expires_at` (indexed), so no update is HOT and each one writes all six indexes; graphile-worker deletes finished jobs from a narrower table. On this server autovacuum is off, so dead index entries also pile up at the head of the ready index during a drain. Fewer indexes touched per transition (e.g. no `jobs_status_id_idx`, listing by a partial index instead) is the schema-side lever.",
  "- Our worker claims only as many jobs as it has free slots, and a slot frees only after its completion has committed. Under a backlog this settles into many small claims (often 1–2 jobs after each completion batch) and small completion batches: two commits per handful of jobs. graphile-worker's local queue locks 500 jobs per fetch and pg-boss fetches 500 per call, so both pay one claim per hundreds of jobs.",
  "- What would close it on the worker side: claim ahead of the free slots (a bounded local buffer of already-leased jobs, refilled below a low-water mark, leases renewed like running jobs, released on shutdown), and let completions batch across the whole pool with a short, bounded linger. Both keep the semantics: a job is reported done only after its completion commits, and a crash between claim and completion leaves a leased job the rescuer returns to the queue.",
  "- Per-job overhead inside the worker (metrics updates, FiberMap bookkeeping, Schema decode, log annotations) matters at the peers' rates (25–50 µs a job on 2 shared cores); a CPU profile of `bun --cpu-prof src/worker.ts` under the drain is the next measurement to take.",
  "- Pickup latency: one enqueue commit (a WAL flush) plus the NOTIFY delivery plus the claim's own commit sit between enqueue and handler start; on this shared, loaded machine the commit alone is a fraction of a millisecond when idle and several when other suites run."
].join("\n")
