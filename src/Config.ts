/**
 * Every setting the programs read from the environment, with its default. Values are read only when a
 * layer is built, never at import time, so tests and embedding applications can provide their own.
 * `.env.example` documents the same names.
 */
import { Config, ConfigProvider, Context, Duration, Effect, Layer, Redacted } from "effect"

const duration = (name: string, fallback: Duration.Input) =>
  Config.Duration(name).pipe(Config.withDefault(Duration.fromInputUnsafe(fallback)))

/** A setting the program cannot start with, said in `message` (which should name the variable). */
export const invalidSetting = (message: string) =>
  Effect.fail(new Config.ConfigError(new ConfigProvider.SourceError({ message })))

/** An integer setting that must be 1 or more. */
const atLeastOne = (name: string, fallback: number) =>
  Effect.gen(function* () {
    const n = yield* Config.Int(name).pipe(Config.withDefault(fallback))
    if (n >= 1) return n
    return yield* invalidSetting(`${name} must be 1 or more, got ${n}`)
  })

/** DATABASE_URL, DATABASE_POOL_MAX, DATABASE_CONNECT_TIMEOUT, DATABASE_PREPARE, DATABASE_MULTIPLEX. */
export class DatabaseConfig extends Context.Service<
  DatabaseConfig,
  {
    readonly url: Redacted.Redacted<string>
    readonly maxConnections: number
    readonly connectTimeout: Duration.Duration
    readonly applicationName: string
    /** DATABASE_PREPARE: cache prepared statements (default true); false for PgBouncer < 1.21 in transaction mode. */
    readonly prepare: boolean
    /**
     * DATABASE_MULTIPLEX: how many statements may share one pooled connection, pipelined into one write
     * (1: each statement has a connection to itself). Transactions and LISTEN always get their own.
     */
    readonly multiplex: number
  }
>()("jobq/Config/DatabaseConfig") {
  /**
   * The API's many small independent statements (one insert per `POST /jobs`) pipelined 32 to a
   * connection: 15-35% more requests per second at 64 concurrent clients on 2 cores in paired runs, where
   * a statement's socket write and the backend's wake-up had been a fifth of the API's CPU. The worker's few
   * large statements gain nothing from it, so it stays off there (docs/tradeoffs.md).
   */
  static readonly apiMultiplex = 32

  static readonly fromEnv = (applicationName: string, defaults: { readonly multiplex?: number } = {}) =>
    Layer.effect(
      DatabaseConfig,
      Effect.gen(function* () {
        const url = yield* Config.option(Config.Redacted("DATABASE_URL"))
        if (url._tag === "None" || Redacted.value(url.value) === "") {
          return yield* invalidSetting(
            "DATABASE_URL is not set. `npm run api`, `npm run worker` and `npm run migrate` need a Postgres server " +
              "(e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres); `npm start` without it runs " +
              "everything in one process on an embedded database."
          )
        }
        return DatabaseConfig.of({
          url: url.value,
          maxConnections: yield* Config.Int("DATABASE_POOL_MAX").pipe(Config.withDefault(10)),
          connectTimeout: yield* duration("DATABASE_CONNECT_TIMEOUT", "5 seconds"),
          prepare: yield* Config.Boolean("DATABASE_PREPARE").pipe(Config.withDefault(true)),
          multiplex: yield* atLeastOne("DATABASE_MULTIPLEX", defaults.multiplex ?? 1),
          applicationName
        })
      })
    )
}

/** PORT, API_TOKENS, API_PUBLIC_DOCS, MAX_BODY_BYTES: the HTTP API's settings (docs/api.md). */
export class ApiConfig extends Context.Service<
  ApiConfig,
  {
    /** PORT: where `bun run api` listens (default 8080). */
    readonly port: number
    /** API_TOKENS: comma-separated bearer tokens; empty (unset) leaves the API open. */
    readonly tokens: ReadonlyArray<Redacted.Redacted<string>>
    /**
     * API_PUBLIC_DOCS: with API_TOKENS set, whether Swagger UI (`/docs`) and the OpenAPI document stay open
     * (default true), so a browser can load the UI and send a token through its Authorize button. The
     * document describes the API and its kinds' payload schemas, never jobs; false puts both behind the tokens.
     */
    readonly publicDocs: boolean
    /** MAX_BODY_BYTES: largest request body read (default 1 MiB); larger ones are answered 413. */
    readonly maxBodyBytes: number
  }
>()("jobq/Config/ApiConfig") {
  static readonly defaults = { port: 8080, tokens: [], publicDocs: true, maxBodyBytes: 1024 * 1024 }
  static readonly layer = (settings: Partial<ApiConfig["Service"]> = {}) =>
    Layer.succeed(ApiConfig, ApiConfig.of({ ...ApiConfig.defaults, ...settings }))
  static readonly fromEnv = Layer.effect(
    ApiConfig,
    Effect.gen(function* () {
      const tokens = yield* Config.Redacted("API_TOKENS").pipe(Config.withDefault(Redacted.make("")))
      return ApiConfig.of({
        port: yield* Config.Port("PORT").pipe(Config.withDefault(ApiConfig.defaults.port)),
        tokens: Redacted.value(tokens)
          .split(",")
          .map((token) => token.trim())
          .filter((token) => token.length > 0)
          .map((token) => Redacted.make(token)),
        publicDocs: yield* Config.Boolean("API_PUBLIC_DOCS").pipe(
          Config.withDefault(ApiConfig.defaults.publicDocs)
        ),
        maxBodyBytes: yield* Config.Int("MAX_BODY_BYTES").pipe(
          Config.withDefault(ApiConfig.defaults.maxBodyBytes)
        )
      })
    })
  )
}

/** RETRY_BASE and RETRY_CAP: the decorrelated jitter bounds for failed jobs. */
export class RetryConfig extends Context.Service<
  RetryConfig,
  { readonly base: Duration.Duration; readonly cap: Duration.Duration }
>()("jobq/Config/RetryConfig") {
  static readonly defaults = { base: Duration.seconds(1), cap: Duration.minutes(10) }
  static readonly fromEnv = Layer.effect(
    RetryConfig,
    Effect.gen(function* () {
      return RetryConfig.of({
        base: yield* duration("RETRY_BASE", RetryConfig.defaults.base),
        cap: yield* duration("RETRY_CAP", RetryConfig.defaults.cap)
      })
    })
  )
  static readonly layer = (settings: { readonly base: Duration.Input; readonly cap: Duration.Input }) =>
    Layer.succeed(
      RetryConfig,
      RetryConfig.of({
        base: Duration.fromInputUnsafe(settings.base),
        cap: Duration.fromInputUnsafe(settings.cap)
      })
    )
}

export interface WorkerSettings {
  /** WORKER_ID: names this worker in leases; default host-pid-random. */
  readonly workerId: string
  /** WORKER_CONCURRENCY: jobs run at once (default 10). */
  readonly concurrency: number
  /**
   * WORKER_PREFETCH: jobs claimed ahead of free slots and held (leased) in the worker, so claims come in
   * batches (default max(concurrency, 32)). 0 claims only for free slots: right for long jobs, where a
   * job waiting in one worker's buffer would rather run on another, idle worker.
   */
  readonly prefetch: number
  /** WORKER_QUEUES: comma-separated queues to serve; unset serves every queue. */
  readonly queues: ReadonlyArray<string> | undefined
  /** WORKER_POLL_INTERVAL: how often an idle worker looks for jobs when no notification came (default 1 second). */
  readonly pollInterval: Duration.Duration
  /** WORKER_LEASE: how long a claim holds a job before another worker may rescue it (default 30 seconds). */
  readonly lease: Duration.Duration
  /** WORKER_LEASE_RENEW: how often held leases are renewed and cancel requests checked (default 1 second). */
  readonly renewInterval: Duration.Duration
  /**
   * WORKER_QUEUE_REFRESH: how often the worker reads the queues' pauses and limits when no notification
   * told it of a change (default 1 second). Claims honour a pause at once whatever this is; it bounds how
   * long jobs this worker already claimed (buffered, not started) of a paused queue may still start when the
   * notification was lost.
   */
  readonly queueRefresh: Duration.Duration
  /**
   * WORKER_HEARTBEAT: how often the worker writes its row in `workers` (default 5 seconds). A worker that
   * misses three heartbeats in a row leaves `GET /workers` (15 s by default).
   */
  readonly heartbeat: Duration.Duration
  /**
   * WORKER_LEADER_LEASE: how long the elected maintainer's lease lasts (default 10 seconds); every worker
   * tries to take or renew it every third of that. When the maintainer dies another worker takes over within
   * this lease and a third of it; one that stops gives it up at once.
   */
  readonly leaderLease: Duration.Duration
  /** WORKER_RESCUE_INTERVAL: how often expired leases are rescued (default 5 seconds). */
  readonly rescueInterval: Duration.Duration
  /** WORKER_SHUTDOWN_GRACE: on SIGTERM, how long running jobs may finish before they are interrupted and released (default 30 seconds). */
  readonly shutdownGrace: Duration.Duration
  /**
   * JOB_RETENTION: finished jobs older than this are deleted by maintenance; unset keeps them (default).
   * `0` deletes a succeeded job in the statement that completes it, so nothing of it is kept. The settings
   * per status below win over it.
   */
  readonly retention: Duration.Duration | undefined
  /** JOB_RETENTION_SUCCEEDED: how long succeeded jobs are kept; unset: JOB_RETENTION. `0`: as above. */
  readonly retentionSucceeded: Duration.Duration | undefined
  /** JOB_RETENTION_CANCELLED: how long cancelled jobs are kept; unset: JOB_RETENTION. */
  readonly retentionCancelled: Duration.Duration | undefined
  /**
   * JOB_RETENTION_FAILED: how long jobs that failed permanently are kept; unset: JOB_RETENTION. Failures
   * are what someone comes back to read: keep them longest (e.g. 30 days, against 1 day for successes).
   */
  readonly retentionFailed: Duration.Duration | undefined
}

/** How long each finished status is kept (undefined: forever), from the settings above. */
export const retentionOf = (settings: WorkerSettings) => ({
  succeeded: settings.retentionSucceeded ?? settings.retention,
  cancelled: settings.retentionCancelled ?? settings.retention,
  failed_permanent: settings.retentionFailed ?? settings.retention
})

const durationKeys = new Set([
  "pollInterval",
  "queueRefresh",
  "heartbeat",
  "leaderLease",
  "lease",
  "renewInterval",
  "rescueInterval",
  "shutdownGrace",
  "retention",
  "retentionSucceeded",
  "retentionCancelled",
  "retentionFailed"
])

export type WorkerSettingsInput = {
  readonly [K in keyof WorkerSettings]?: WorkerSettings[K] extends Duration.Duration | undefined
    ? Duration.Input
    : WorkerSettings[K]
}

export const defaultWorkerId = () =>
  `${process.env.HOSTNAME ?? "worker"}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`

export class WorkerConfig extends Context.Service<WorkerConfig, WorkerSettings>()(
  "jobq/Config/WorkerConfig"
) {
  static readonly defaults = (): WorkerSettings => ({
    workerId: defaultWorkerId(),
    concurrency: 10,
    prefetch: 32,
    queues: undefined,
    pollInterval: Duration.seconds(1),
    lease: Duration.seconds(30),
    renewInterval: Duration.seconds(1),
    queueRefresh: Duration.seconds(1),
    heartbeat: Duration.seconds(5),
    leaderLease: Duration.seconds(10),
    rescueInterval: Duration.seconds(5),
    shutdownGrace: Duration.seconds(30),
    retention: undefined,
    retentionSucceeded: undefined,
    retentionCancelled: undefined,
    retentionFailed: undefined
  })

  /** Settings given in code; durations may be written as `"5 seconds"` or milliseconds. */
  static readonly layer = (settings: WorkerSettingsInput = {}) =>
    Layer.sync(WorkerConfig, () => {
      const resolved: Record<string, unknown> = { ...WorkerConfig.defaults() }
      for (const [key, value] of Object.entries(settings)) {
        if (value === undefined) continue
        resolved[key] = durationKeys.has(key) ? Duration.fromInputUnsafe(value as Duration.Input) : value
      }
      if (settings.prefetch === undefined) resolved.prefetch = Math.max(resolved.concurrency as number, 32)
      return WorkerConfig.of(resolved as unknown as WorkerSettings)
    })

  static readonly fromEnv = Layer.effect(
    WorkerConfig,
    Effect.gen(function* () {
      const d = WorkerConfig.defaults()
      const concurrency = yield* Config.Int("WORKER_CONCURRENCY").pipe(Config.withDefault(d.concurrency))
      const queues = yield* Config.option(Config.String("WORKER_QUEUES"))
      // "0" alone is allowed too: it reads as "keep nothing", not as a malformed duration
      const retentionSetting = (name: string) =>
        Config.option(
          Config.Duration(name).pipe(
            Config.orElse(() => Config.Literal("0", name).pipe(Config.map(() => Duration.zero)))
          )
        ).pipe(Config.map((setting) => (setting._tag === "None" ? undefined : setting.value)))
      return WorkerConfig.of({
        workerId: yield* Config.String("WORKER_ID").pipe(Config.withDefault(d.workerId)),
        concurrency,
        prefetch: yield* Config.Int("WORKER_PREFETCH").pipe(Config.withDefault(Math.max(concurrency, 32))),
        queues:
          queues._tag === "None"
            ? undefined
            : queues.value
                .split(",")
                .map((q) => q.trim())
                .filter((q) => q.length > 0),
        pollInterval: yield* duration("WORKER_POLL_INTERVAL", d.pollInterval),
        lease: yield* duration("WORKER_LEASE", d.lease),
        renewInterval: yield* duration("WORKER_LEASE_RENEW", d.renewInterval),
        queueRefresh: yield* duration("WORKER_QUEUE_REFRESH", d.queueRefresh),
        heartbeat: yield* duration("WORKER_HEARTBEAT", d.heartbeat),
        leaderLease: yield* duration("WORKER_LEADER_LEASE", d.leaderLease),
        rescueInterval: yield* duration("WORKER_RESCUE_INTERVAL", d.rescueInterval),
        shutdownGrace: yield* duration("WORKER_SHUTDOWN_GRACE", d.shutdownGrace),
        retention: yield* retentionSetting("JOB_RETENTION"),
        retentionSucceeded: yield* retentionSetting("JOB_RETENTION_SUCCEEDED"),
        retentionCancelled: yield* retentionSetting("JOB_RETENTION_CANCELLED"),
        retentionFailed: yield* retentionSetting("JOB_RETENTION_FAILED")
      })
    })
  )
}
