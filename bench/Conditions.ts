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
  "- **The database is no longer the limit.** pgbench running our own insert + claim + complete statements in batches of 100 (table above) reaches about the rate graphile-worker drains at. It got there when the jobs table dropped the three listing indexes (`(status, id)`, `(queue, id)`, `(kind, id)`) that every claim and completion had to write (no update of a job can be HOT, since `status` changes): that raised the pgbench ceiling from about 22,000 to about 60,000 jobs/s and our drain by about a fifth.",
  "- **Batching is in place.** The worker claims ahead of its free slots into a leased local buffer (`WORKER_PREFETCH`, 500 here, like the peers' fetch size), refills it when it falls to half, frees a runner's slot as soon as the handler returns, and completes in batches of whatever finished meanwhile; about 250 jobs per statement during a drain. The first version, which claimed only for free slots and held a slot until its completion committed, drained about 8,000 jobs/s.",
  "- **What remains is per-job CPU in the worker process**, which runs at about one core during a drain while Postgres uses the other: about 40 µs a job. A CPU profile (`bun --cpu-prof-md src/worker.ts` under a 200,000-job drain) puts 15% in socket writes (the kernel's loopback TCP work, charged to the writer), 10% in decoding the claimed rows (every column of the job, six timestamps each parsed into a `Date`), 30% inside the per-job fibers (the handler's fiber, its `jobq.job.execute` span and attributes, three metric updates, the settlement), and the rest in the Effect runtime's scheduling. Since then the execution span is made only when tracing is on, which gained about 15% (and is why the tracing scenario's overhead is now larger: the untraced path got cheaper). graphile-worker also deletes a finished job instead of updating it, which makes its completion cheaper than ours (we keep the job and its result for `GET /jobs/{id}`).",
  "- **What would close it**: claim only the columns a handler needs and build the rest in the worker; run cheap handlers in the runner's own fiber instead of forking one per job (interrupting the runner for a cancel and restarting it); a Unix socket instead of loopback TCP where Postgres is local. Each keeps the semantics: a job is reported done only after its completion committed, and a crash between claim and completion leaves leased jobs that the rescuer returns to the queue.",
  "- **Queue depth**: with a 1,000,000-job backlog the drain runs at about half its 10,000-job rate. This server runs with autovacuum off: claimed rows leave dead entries at the head of the ready index that every later claim steps over until a vacuum removes them, and the million-row table and its indexes no longer fit the 128 MB of shared buffers. With autovacuum on and the queue table's settings from docs/runbook.md the gap should narrow; not measured here.",
  "- **Pickup latency**: one enqueue commit (a WAL flush) plus the NOTIFY delivery plus the claim's own commit sit between enqueue and handler start."
].join("\n")
