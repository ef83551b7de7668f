/** The notes RESULTS.md opens with: what the run could not control, and what it leaves unmeasured. */

export const preface = (quick: boolean) =>
  [
    "**Conditions.** This 2-core machine is shared: other engineers run their test suites and type checks on it during the run (see the load average below), so absolute figures move by tens of percent between runs; paired ratios (one system's run right after the other's) are steadier than the absolute numbers. Every commit here waits for a WAL flush (`synchronous_commit = on`, the default), which makes one-job-at-a-time paths commit-bound.",
    "",
    "**The worker's CPU profile** is summarised in the last section; it is taken by hand (`bun --cpu-prof-md`), not by this run.",
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
  "- **Where the CPU goes now.** In a 150,000-job no-op drain (CPU read from /proc), our worker process uses about 8 µs a job and Postgres about 15 µs; graphile-worker's Node process about 7 µs and Postgres about 10 µs. The claim costs both the same per row (pgbench, claims of 500 on 200,000 queued jobs: 4.2 ms ours, 3.7-4.2 ms graphile-worker's). The difference in Postgres is the completion: graphile-worker deletes a finished job, we update it and keep its result for `GET /jobs/{id}`, which writes a new row version and a primary-key entry. `JOB_RETENTION=0` deletes like graphile-worker does (the second column of the drain table).",
  "- **What this round changed**, each measured on its own: job fibers start straight from the claimed buffer when a slot frees (no runner fiber, `Queue` hand-off and `FiberMap` entry per job); the per-job counters and histograms are plain numbers read at export (`Metric.registerUnsafe`) instead of an Effect metric update each; a claim returns only the columns it cannot know and the worker fills in the rest (-20% worker CPU, -10% Postgres CPU); a completion batch without results sends its ids alone (-9% Postgres CPU); the next claim no longer waits for the previous batch's completion to commit; statements over a batch of ids join `unnest(ids)` (the planner otherwise tested the whole array against every entry of the lease index). Together: worker CPU per job from about 19 µs to 8 µs, Postgres from about 18 µs to 15 µs, and the drain from about 27,000 to 42,000-48,000 jobs/s at the peers' fetch size (about 60,000 with a 2,000-job buffer; these figures use the first-call clock described below, worth about 5%).",
  "- **What limits it now is the cycle, not the CPU.** A claim of 508 rows runs about 7 ms in Postgres while the worker waits for it; then the worker runs the batch (about 4 ms) while Postgres completes the previous one. Each side is idle part of every cycle: the two cores are about 60% busy. Sending the next claim before running the batch (claims of half the buffer) did not help: the claim then shares two cores with the completion and the worker, runs twice as long, and the drain fell from about 38,000 to 29,000 jobs/s. A larger buffer spreads the cycle's fixed costs: `WORKER_PREFETCH=2000` drains about 49,000 jobs/s at concurrency 8 against about 40,000 at 500 (the peers' fetch size, used in the table).",
  "- **The clocks are alike.** Our drain's clock starts at its first handler call, as the peers' harnesses start theirs, so neither side's first claim is timed. (Until this run ours started at the start gate, before its first claim; that first statement on a fresh connection takes 25-35 ms of a 400-600 ms run.)",
  "- **What would close the rest**: make each claimed row cheaper for Postgres (every claim writes a new row version plus a primary-key entry and a lease-index entry; a claim that touched fewer indexes, or a lease kept outside the job row, would cost less), and make a completion cheaper than an update where results are not needed (the delete mode does this). Two worker processes claiming side by side drain less than one (the two-process table), so more claimers is not the road.",
  "- **Queue depth**: with a 1,000,000-job backlog the drain runs well below its 10,000-job rate. This server runs with autovacuum off: claimed rows leave dead entries at the head of the ready index that every later claim steps over until a vacuum removes them, and the million-row table and its indexes no longer fit the 128 MB of shared buffers. With autovacuum on and the queue table's settings from docs/runbook.md the gap should narrow; not measured here.",
  "- **Pickup latency**: one enqueue commit (a WAL flush) plus the NOTIFY delivery plus the claim's own commit sit between enqueue and handler start."
].join("\n")
