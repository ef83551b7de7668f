/**
 * A peer's drain run: its driver script (bench/peers/*.mjs) runs under Node 22 against the benchmark's
 * database, installs the peer's own schema, enqueues the backlog through the peer's documented API,
 * analyzes the peer's job table, and times from its first handler call until every completion has
 * committed. Prints one JSON line: { jobsPerSecond, seconds }.
 */

import type { BenchDatabase } from "../BenchDatabase.ts"
import { benchDirectory, nodeBinary } from "../BenchDependencies.ts"

export interface Peer {
  readonly name: string
  readonly script: string
  /** The settings passed, as shown in RESULTS.md. */
  readonly settings: string
  readonly env: Readonly<Record<string, string>>
}

export const peers: ReadonlyArray<Peer> = [
  {
    name: "graphile-worker 0.18.0",
    script: "peers/graphile.mjs",
    settings:
      "`concurrentJobs` = concurrency, `localQueue.size` 500 (batched fetch; 9, 100, 500 and 1000 tried, 500 was best), `completeJobBatchDelay` 0 (batched completion), no-op logger",
    env: { BENCH_LOCAL_QUEUE_SIZE: "500", BENCH_COMPLETE_DELAY: "0" }
  },
  {
    name: "pg-boss 12.38.0",
    script: "peers/pgboss.mjs",
    settings:
      "`work()` with `localConcurrency` = concurrency, `batchSize` 500, `burstWhenBatchFull: true`, `pollingIntervalSeconds` 0.5; defaults otherwise",
    env: { BENCH_BATCH_SIZE: "500" }
  }
]

export const run = async (
  peer: Peer,
  db: BenchDatabase,
  options: { readonly concurrency: number; readonly backlog: number }
): Promise<number> => {
  const child = Bun.spawn([nodeBinary, peer.script], {
    cwd: benchDirectory,
    env: {
      ...process.env,
      ...peer.env,
      DATABASE_URL: db.url,
      BENCH_CONCURRENCY: String(options.concurrency),
      BENCH_BACKLOG: String(options.backlog)
    },
    stdout: "pipe",
    stderr: "pipe"
  })
  const timer = setTimeout(() => child.kill("SIGKILL"), 180_000)
  const [out, err, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited
  ])
  clearTimeout(timer)
  const line = out.trim().split("\n").at(-1) ?? ""
  if (code !== 0 || !line.startsWith("{")) {
    throw new Error(`${peer.name} run failed (exit ${code}): ${err.slice(-2000)}`)
  }
  return (JSON.parse(line) as { jobsPerSecond: number }).jobsPerSecond
}
