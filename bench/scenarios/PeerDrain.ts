/**
 * The peers' runs: each driver script (bench/peers/*.mjs) runs under Node 22 against the benchmark's
 * database (and, for BullMQ on Redis, a Redis server), installs the peer's own schema, and then, by
 * BENCH_MODE:
 * - drain: enqueues the backlog through the peer's documented API, analyzes the peer's job table, says
 *   `ready` and waits; the harness reads the CPU counters of the database's backends (and of redis-server)
 *   and lets it go; it times from its first handler call until every completion is visible in its store,
 *   says `drained` with its rate and waits again while the harness reads the counters a second time;
 * - enqueue: times its bulk enqueue of the backlog (after an untimed warm-up call);
 * - pickup: times jobs added one at a time at a fixed rate to an idle worker (bench/peers/protocol.mjs).
 */

import type { BenchDatabase } from "../BenchDatabase.ts"
import { benchDirectory, nodeBinary } from "../BenchDependencies.ts"
import * as ProcessCpu from "../ProcessCpu.ts"
import { privateAof, type RedisServer, shared } from "../RedisServer.ts"

export type Store = "postgres" | "redis (no disk)" | "redis (AOF)"

export interface Peer {
  readonly name: string
  readonly script: string
  /** The settings passed, as shown in RESULTS.md. */
  readonly settings: string
  readonly env: Readonly<Record<string, string>>
  /** Where its jobs live: Postgres only, or a Redis server (private with AOF, or the machine's). */
  readonly store: Store
  /** Drain only at these concurrency levels (of those the scenario runs); all when absent. */
  readonly levels?: ReadonlyArray<number>
  /** Runs in the pickup scenario (peers that poll rather than listen are left out). */
  readonly pickup: boolean
}

const bullmqSettings =
  "`Worker` with `concurrency` = concurrency and a no-op processor, defaults otherwise: `removeOnComplete` unset (completed jobs kept, as ours are by default), no batched fetch (BullMQ's open-source edition has none: a slot fetches its next job in the call that completes the previous one)"

export const peers: ReadonlyArray<Peer> = [
  {
    name: "graphile-worker 0.18.0",
    script: "peers/graphile.mjs",
    settings:
      "`concurrentJobs` = concurrency, `localQueue.size` 500 (batched fetch; 9, 100, 500 and 1000 tried, 500 was best), `completeJobBatchDelay` 0 (batched completion), no-op logger",
    env: { BENCH_LOCAL_QUEUE_SIZE: "500", BENCH_COMPLETE_DELAY: "0" },
    store: "postgres",
    pickup: true
  },
  {
    name: "pg-boss 12.38.0",
    script: "peers/pgboss.mjs",
    settings:
      "`work()` with `localConcurrency` = concurrency, `batchSize` 500, `burstWhenBatchFull: true`, `pollingIntervalSeconds` 0.5; defaults otherwise",
    env: { BENCH_BATCH_SIZE: "500" },
    store: "postgres",
    pickup: false
  },
  {
    name: "BullMQ 6.7.6, Redis",
    script: "peers/bullmq.mjs",
    settings: `${bullmqSettings}; ioredis 6.1.0 to the machine's Redis (127.0.0.1:6379, no RDB snapshots, no append-only file)`,
    env: { BENCH_BACKEND: "redis" },
    store: "redis (no disk)",
    levels: [8, 32],
    pickup: true
  },
  {
    name: "BullMQ 6.7.6, Redis AOF",
    script: "peers/bullmq.mjs",
    settings: `${bullmqSettings}; a private redis-server with \`appendonly yes\`, \`appendfsync everysec\` (Redis's durable setting)`,
    env: { BENCH_BACKEND: "redis" },
    store: "redis (AOF)",
    levels: [8, 32],
    pickup: true
  },
  {
    name: "BullMQ 6.7.6, PostgreSQL",
    script: "peers/bullmq.mjs",
    settings: `${bullmqSettings}; BullMQ's own PostgreSQL backend (\`createPostgresBackend\`, schema \`bullmq\`, \`migrate: true\`, node-postgres 8.23.1)`,
    env: { BENCH_BACKEND: "postgres" },
    store: "postgres",
    levels: [8, 32],
    pickup: true
  }
]

/** The Redis servers a run may use, started by the scenario that runs BullMQ. */
export interface RedisServers {
  readonly "redis (no disk)"?: RedisServer
  readonly "redis (AOF)"?: RedisServer
}

const redisOf = (peer: Peer, servers: RedisServers) => {
  if (peer.store === "postgres") return undefined
  const server = servers[peer.store]
  if (server === undefined) throw new Error(`${peer.name}: no ${peer.store} server started`)
  return server
}

/** Reads a child's standard output a line at a time. */
const lineReader = (stream: ReadableStream<Uint8Array>) => {
  const reader = stream.getReader()
  const decoder = new TextDecoder()
  let buffer = ""
  return async (): Promise<string | undefined> => {
    for (;;) {
      const newline = buffer.indexOf("\n")
      if (newline >= 0) {
        const line = buffer.slice(0, newline)
        buffer = buffer.slice(newline + 1)
        return line
      }
      const { value, done } = await reader.read()
      if (done) return undefined
      buffer += decoder.decode(value, { stream: true })
    }
  }
}

const start = (
  peer: Peer,
  db: BenchDatabase,
  servers: RedisServers,
  env: Readonly<Record<string, string>>
) => {
  const redis = redisOf(peer, servers)
  const child = Bun.spawn([nodeBinary, peer.script], {
    cwd: benchDirectory,
    env: {
      ...process.env,
      ...peer.env,
      DATABASE_URL: db.url,
      ...(redis === undefined ? {} : { REDIS_PORT: String(redis.port), REDIS_DB: String(redis.db) }),
      ...env
    },
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe"
  })
  const timer = setTimeout(() => child.kill("SIGKILL"), 180_000)
  const errors = new Response(child.stderr).text()
  const readLine = lineReader(child.stdout)
  const fail = async (what: string): Promise<never> => {
    child.kill("SIGKILL")
    const code = await child.exited
    throw new Error(`${peer.name} ${what} (exit ${code}): ${(await errors).slice(-2000)}`)
  }
  /** The next message of `phase` the script prints. */
  const message = async (phase: string): Promise<Record<string, unknown>> => {
    for (;;) {
      const line = await readLine()
      if (line === undefined) return fail(`ended before saying ${phase}`)
      if (!line.startsWith("{")) continue
      const parsed = JSON.parse(line) as Record<string, unknown>
      if (parsed.phase === phase) return parsed
    }
  }
  const proceed = () => {
    child.stdin.write("go\n")
    child.stdin.flush()
  }
  const finished = async () => {
    child.stdin.end()
    const code = await child.exited
    clearTimeout(timer)
    if (code !== 0) await fail("failed")
  }
  return { redis, message, proceed, finished, pid: child.pid }
}

export interface PeerDrainRun {
  readonly jobsPerSecond: number
  /** CPU seconds of the database's backends from the drain's start to its end. */
  readonly postgresCpuSeconds: number
  /** CPU seconds of redis-server over the same window (BullMQ on Redis only). */
  readonly redisCpuSeconds?: number
  /** CPU seconds of the peer's own process (its worker, under Node) over the same window. */
  readonly workerCpuSeconds?: number
}

export const run = async (
  peer: Peer,
  db: BenchDatabase,
  admin: Bun.SQL,
  servers: RedisServers,
  options: { readonly concurrency: number; readonly backlog: number }
): Promise<PeerDrainRun> => {
  const child = start(peer, db, servers, {
    BENCH_MODE: "drain",
    BENCH_CONCURRENCY: String(options.concurrency),
    BENCH_BACKLOG: String(options.backlog)
  })
  await child.message("ready")
  const postgres = ProcessCpu.postgresWindow(admin, db.name)
  await postgres.start()
  const redisBefore = child.redis === undefined ? undefined : ProcessCpu.cpuSeconds(child.redis.pid)
  const workerBefore = ProcessCpu.seconds(child.pid)
  child.proceed()
  const drained = await child.message("drained")
  const workerCpuSeconds = ProcessCpu.seconds(child.pid) - workerBefore
  const postgresCpuSeconds = await postgres.end()
  const redisAfter = child.redis === undefined ? undefined : ProcessCpu.cpuSeconds(child.redis.pid)
  child.proceed()
  await child.finished()
  return {
    jobsPerSecond: drained.jobsPerSecond as number,
    postgresCpuSeconds,
    workerCpuSeconds,
    ...(redisBefore !== undefined && redisAfter !== undefined
      ? { redisCpuSeconds: redisAfter - redisBefore }
      : {})
  }
}

/** One bulk enqueue of `jobs` jobs: jobs/s by the API used (graphile-worker times three). */
export const enqueue = async (
  peer: Peer,
  db: BenchDatabase,
  servers: RedisServers,
  jobs: number
): Promise<Record<string, number>> => {
  const child = start(peer, db, servers, { BENCH_MODE: "enqueue", BENCH_BACKLOG: String(jobs) })
  const { rates } = await child.message("enqueued")
  await child.finished()
  return rates as Record<string, number>
}

/** One pickup run: `jobs` latencies (ms) after an unreported warm-up, at `perSecond`. */
export const pickup = async (
  peer: Peer,
  db: BenchDatabase,
  servers: RedisServers,
  options: {
    readonly jobs: number
    readonly perSecond: number
    readonly warmUp: number
    readonly concurrency: number
  }
): Promise<ReadonlyArray<number>> => {
  const child = start(peer, db, servers, {
    BENCH_MODE: "pickup",
    BENCH_CONCURRENCY: String(options.concurrency),
    BENCH_PICKUP_JOBS: String(options.jobs),
    BENCH_PICKUP_RATE: String(options.perSecond),
    BENCH_PICKUP_WARM_UP: String(options.warmUp)
  })
  const { latencies } = await child.message("pickup")
  await child.finished()
  return latencies as ReadonlyArray<number>
}

/** Starts the Redis servers the given peers need; `stop` stops (or cleans) them all. */
export const redisServers = async (
  wanted: ReadonlyArray<Peer>,
  log: (line: string) => void
): Promise<{ readonly servers: RedisServers; readonly stop: () => Promise<void> }> => {
  const servers: { -readonly [K in keyof RedisServers]: RedisServers[K] } = {}
  for (const [store, make] of [
    ["redis (no disk)", shared],
    ["redis (AOF)", privateAof]
  ] as const) {
    if (!wanted.some((p) => p.store === store)) continue
    try {
      servers[store] = await make()
    } catch (error) {
      log(`${store} unavailable, BullMQ on it left out: ${String(error)}`)
    }
  }
  return {
    servers,
    stop: async () => {
      for (const server of Object.values(servers)) await server?.stop()
    }
  }
}

/** The peers that can run with the servers at hand. */
export const runnable = (servers: RedisServers) =>
  peers.filter((p) => p.store === "postgres" || servers[p.store] !== undefined)
