/**
 * Every setting the programs read from the environment, with its default. Values are read only when a
 * layer is built, never at import time, so tests and embedding applications can provide their own.
 * `.env.example` documents the same names.
 */
import { hostname } from "node:os"
import { Config, ConfigProvider, Context, Duration, Effect, Layer, type LogLevel, Redacted } from "effect"

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

/**
 * A duration setting that may be turned off: unset takes `fallback`, `0` (or any zero duration) means none.
 */
const optionalDuration = (name: string, fallback: Duration.Input | undefined) =>
  Effect.map(
    Config.option(
      Config.Duration(name).pipe(
        Config.orElse(() => Config.Literal("0", name).pipe(Config.map(() => Duration.zero)))
      )
    ),
    (value) => {
      const chosen =
        value._tag === "Some"
          ? value.value
          : fallback === undefined
            ? undefined
            : Duration.fromInputUnsafe(fallback)
      return chosen === undefined || Duration.isZero(chosen) ? undefined : chosen
    }
  )

/** What a program's pool uses unless the environment says otherwise. */
export interface DatabaseDefaults {
  /** Statements that may share one connection, pipelined (`DATABASE_MULTIPLEX`); default 1, off. */
  readonly multiplex?: number | undefined
  /** Postgres's `statement_timeout` for the pool's sessions (`DATABASE_STATEMENT_TIMEOUT`); default none. */
  readonly statementTimeout?: Duration.Input | undefined
  /** Postgres's `lock_timeout` for the pool's sessions (`DATABASE_LOCK_TIMEOUT`); default none. */
  readonly lockTimeout?: Duration.Input | undefined
}

/**
 * What DATABASE_URL leads to (`DATABASE_POOLER`, docs/runbook.md "Behind a connection pooler"):
 * - `none`: Postgres itself (or a proxy that passes everything through).
 * - `session`: a pooler in session mode (PgBouncer's `pool_mode = session`): a client keeps one server
 *   session for as long as it is connected, so everything works, but the pooler refuses startup parameters
 *   it does not know (`statement_timeout`, `lock_timeout`): those must be the server's settings for the
 *   role or database, and the program checks them when it starts.
 * - `transaction`: a pooler in transaction mode (PgBouncer's `pool_mode = transaction`): consecutive
 *   transactions of one client may run on different server sessions. As `session`, and besides: named
 *   prepared statements are off unless DATABASE_PREPARE says otherwise, and the sessions that LISTEN and
 *   hold the event gates' advisory locks connect to DATABASE_LISTEN_URL, which must then be set.
 */
export type Pooler = "none" | "session" | "transaction"

/**
 * DATABASE_URL, DATABASE_LISTEN_URL, DATABASE_POOLER, DATABASE_POOL_MAX, DATABASE_CONNECT_TIMEOUT,
 * DATABASE_PREPARE, DATABASE_MULTIPLEX, DATABASE_STATEMENT_TIMEOUT, DATABASE_LOCK_TIMEOUT.
 */
export class DatabaseConfig extends Context.Service<
  DatabaseConfig,
  {
    readonly url: Redacted.Redacted<string>
    /**
     * DATABASE_LISTEN_URL: where the sessions that LISTEN (workers' wake-ups, the API's waiters and event
     * followers) and that hold the event gates' session advisory locks connect; unset: DATABASE_URL. Behind
     * a transaction-mode pooler, Postgres directly or a session-mode pool: a LISTEN or a session lock through
     * transaction pooling is left on whichever server session ran it.
     */
    readonly listenUrl: Redacted.Redacted<string> | undefined
    /** DATABASE_POOLER: `none` (default), `session` or `transaction` (see `Pooler`). */
    readonly pooler: Pooler
    readonly maxConnections: number
    readonly connectTimeout: Duration.Duration
    readonly applicationName: string
    /**
     * DATABASE_PREPARE: cache named prepared statements per connection (default true; false with
     * DATABASE_POOLER=transaction). PgBouncer before 1.21 cannot keep them in transaction mode; 1.21 and
     * later can with `max_prepared_statements` set, and then DATABASE_PREPARE=true may be set again.
     */
    readonly prepare: boolean
    /**
     * DATABASE_MULTIPLEX: how many statements may share one pooled connection, pipelined into one write
     * (1: each statement has a connection to itself). Transactions and LISTEN always get their own.
     */
    readonly multiplex: number
    /**
     * DATABASE_STATEMENT_TIMEOUT: Postgres's `statement_timeout` on every connection of the pool, sent in
     * the startup packet (no round trip per statement); the server cancels and rolls back a statement that
     * runs longer. Undefined: none.
     */
    readonly statementTimeout: Duration.Duration | undefined
    /** DATABASE_LOCK_TIMEOUT: Postgres's `lock_timeout`, the same way: how long one statement may wait for a lock. */
    readonly lockTimeout: Duration.Duration | undefined
  }
>()("jobq/Config/DatabaseConfig") {
  /**
   * The API's many small independent statements (one insert per `POST /jobs`) pipelined 32 to a
   * connection: 15-35% more requests per second at 64 concurrent clients on 2 cores in paired runs, where
   * a statement's socket write and the backend's wake-up had been a fifth of the API's CPU. The worker's few
   * large statements gain nothing from it, so it stays off there (docs/tradeoffs.md).
   */
  static readonly apiMultiplex = 32

  /**
   * The API program's pool. Postgres bounds every statement the API sends, so the API never has to give up
   * on one it sent: a request answered 503 changed nothing (docs/api.md, "503 vs 500"). Lock waits get the
   * shorter bound because statements pipelined on one connection run one after another: a statement that
   * waits on a lock holds up those behind it.
   */
  static readonly apiDefaults: DatabaseDefaults = {
    multiplex: DatabaseConfig.apiMultiplex,
    statementTimeout: "5 seconds",
    lockTimeout: "1 second"
  }

  static readonly fromEnv = (applicationName: string, defaults: DatabaseDefaults = {}) =>
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
        const pooler = yield* choice<Pooler>(
          "DATABASE_POOLER",
          { none: "none", session: "session", transaction: "transaction" },
          "none"
        )
        const listenUrl = yield* Config.option(Config.Redacted("DATABASE_LISTEN_URL"))
        const listenUrlGiven = listenUrl._tag === "Some" && Redacted.value(listenUrl.value) !== ""
        if (pooler === "transaction" && !listenUrlGiven) {
          return yield* invalidSetting(
            "DATABASE_POOLER=transaction needs DATABASE_LISTEN_URL: LISTEN and the event gates' advisory locks " +
              "need a session of their own, which transaction pooling does not give; point it at Postgres " +
              "directly or at a session-mode pool (docs/runbook.md, Behind a connection pooler)"
          )
        }
        return DatabaseConfig.of({
          url: url.value,
          listenUrl: listenUrlGiven ? listenUrl.value : undefined,
          pooler,
          maxConnections: yield* Config.Int("DATABASE_POOL_MAX").pipe(Config.withDefault(10)),
          connectTimeout: yield* duration("DATABASE_CONNECT_TIMEOUT", "5 seconds"),
          prepare: yield* Config.Boolean("DATABASE_PREPARE").pipe(
            Config.withDefault(pooler !== "transaction")
          ),
          multiplex: yield* atLeastOne("DATABASE_MULTIPLEX", defaults.multiplex ?? 1),
          statementTimeout: yield* optionalDuration("DATABASE_STATEMENT_TIMEOUT", defaults.statementTimeout),
          lockTimeout: yield* optionalDuration("DATABASE_LOCK_TIMEOUT", defaults.lockTimeout),
          applicationName
        })
      })
    )
}

/** PORT, API_TOKENS, API_PUBLIC_DOCS, MAX_BODY_BYTES, API_DATABASE_ACQUIRE_TIMEOUT, DASHBOARD_TRACE_URL: the HTTP API's settings (docs/api.md). */
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
    /**
     * API_DATABASE_ACQUIRE_TIMEOUT: how long a request may wait for room at the database (a free place in
     * the pool) before it is answered 503, with nothing sent (default 3 seconds). Once a request's
     * statements are sent, the database bounds them (DATABASE_STATEMENT_TIMEOUT, DATABASE_LOCK_TIMEOUT).
     */
    readonly databaseAcquireTimeout: Duration.Duration
    /**
     * API_READ_TOKENS: comma-separated read-only bearer tokens. One reads everything a full token reads
     * (GET and HEAD); any other method is answered 403. Setting them turns auth on like API_TOKENS does.
     */
    readonly readTokens: ReadonlyArray<Redacted.Redacted<string>>
    /**
     * API_STATS_INTERVAL: how long the dashboard's statistics (`GET /stats`) are kept before they are
     * computed again (default 5 seconds); every viewer shares one computation per interval.
     */
    readonly statsInterval: Duration.Duration
    /** API_STATS_STATEMENT_TIMEOUT: `statement_timeout` for each statistics query (default 2 seconds). */
    readonly statsStatementTimeout: Duration.Duration
    /**
     * DASHBOARD_TRACE_URL: a link to a job's trace in your tracing UI, with `{traceId}` where the trace id
     * goes (such as `https://jaeger.example/trace/{traceId}`); the dashboard's job page then links the trace
     * id of the request that enqueued the job. Unset (the default), the id is shown as text. Only http(s).
     */
    readonly dashboardTraceUrl: string | null
  }
>()("jobq/Config/ApiConfig") {
  static readonly defaults = {
    port: 8080,
    tokens: [],
    publicDocs: true,
    maxBodyBytes: 1024 * 1024,
    databaseAcquireTimeout: Duration.seconds(3),
    readTokens: [],
    statsInterval: Duration.seconds(5),
    statsStatementTimeout: Duration.seconds(2),
    dashboardTraceUrl: null
  }
  static readonly layer = (settings: Partial<ApiConfig["Service"]> = {}) =>
    Layer.succeed(ApiConfig, ApiConfig.of({ ...ApiConfig.defaults, ...settings }))
  static readonly fromEnv = Layer.effect(
    ApiConfig,
    Effect.gen(function* () {
      const tokens = yield* Config.Redacted("API_TOKENS").pipe(Config.withDefault(Redacted.make("")))
      const readTokens = yield* Config.Redacted("API_READ_TOKENS").pipe(Config.withDefault(Redacted.make("")))
      const tokenList = (value: Redacted.Redacted<string>) =>
        Redacted.value(value)
          .split(",")
          .map((token) => token.trim())
          .filter((token) => token.length > 0)
          .map((token) => Redacted.make(token))
      return ApiConfig.of({
        port: yield* Config.Port("PORT").pipe(Config.withDefault(ApiConfig.defaults.port)),
        tokens: tokenList(tokens),
        readTokens: tokenList(readTokens),
        statsInterval: yield* duration("API_STATS_INTERVAL", ApiConfig.defaults.statsInterval),
        statsStatementTimeout: yield* duration(
          "API_STATS_STATEMENT_TIMEOUT",
          ApiConfig.defaults.statsStatementTimeout
        ),
        publicDocs: yield* Config.Boolean("API_PUBLIC_DOCS").pipe(
          Config.withDefault(ApiConfig.defaults.publicDocs)
        ),
        maxBodyBytes: yield* Config.Int("MAX_BODY_BYTES").pipe(
          Config.withDefault(ApiConfig.defaults.maxBodyBytes)
        ),
        databaseAcquireTimeout: yield* duration(
          "API_DATABASE_ACQUIRE_TIMEOUT",
          ApiConfig.defaults.databaseAcquireTimeout
        ),
        dashboardTraceUrl: yield* traceUrl
      })
    })
  )
}

/**
 * DASHBOARD_TRACE_URL (ApiConfig): an http(s) URL with `{traceId}` in it, or null when unset. Declared after
 * ApiConfig, whose layer reads it when built, so that the settings scan (test/packaging.test.ts) counts it
 * as ApiConfig's.
 */
const traceUrl = Effect.gen(function* () {
  const url = yield* Config.option(Config.String("DASHBOARD_TRACE_URL"))
  if (url._tag === "None" || url.value.trim() === "") return null
  if (/^https?:\/\/\S*\{traceId\}/.test(url.value)) return url.value
  return yield* invalidSetting(
    `DASHBOARD_TRACE_URL must be an http(s) URL with {traceId} where the trace id goes, got ${JSON.stringify(url.value)}`
  )
})

/**
 * EVENTS_REPLAY_WINDOW, EVENTS_MAX, EVENTS_SUBSCRIBER_BUFFER, EVENTS_HEARTBEAT, EVENTS_MAX_LIFETIME: the
 * event stream's settings (`GET /events`, docs/api.md). Optional: without this service the defaults apply.
 */
export class EventsConfig extends Context.Service<
  EventsConfig,
  {
    /**
     * EVENTS_REPLAY_WINDOW: how long events stay replayable with `Last-Event-ID` (default 5 minutes): the
     * log keeps them this long, and the API keeps the database writing them this long after its last
     * follower left.
     */
    readonly replayWindow: Duration.Duration
    /** EVENTS_MAX: at most this many events kept in the log (default 100,000); older ones are pruned. */
    readonly maxEvents: number
    /**
     * EVENTS_SUBSCRIBER_BUFFER: events one client may have waiting (default 10,000, a few MB); beyond, it
     * gets a reset and its stream ends.
     */
    readonly subscriberBuffer: number
    /** EVENTS_HEARTBEAT: a `: ping` comment this often on an open stream (default 15 seconds). */
    readonly heartbeat: Duration.Duration
    /** EVENTS_MAX_LIFETIME: a stream ends after this long (default 30 minutes); the client reconnects. */
    readonly maxLifetime: Duration.Duration
  }
>()("jobq/Config/EventsConfig") {
  static readonly defaults = {
    replayWindow: Duration.minutes(5),
    maxEvents: 100_000,
    subscriberBuffer: 10_000,
    heartbeat: Duration.seconds(15),
    maxLifetime: Duration.minutes(30)
  }
  static readonly layer = (settings: Partial<EventsConfig["Service"]> = {}) =>
    Layer.succeed(EventsConfig, EventsConfig.of({ ...EventsConfig.defaults, ...settings }))
  static readonly fromEnv = Layer.effect(
    EventsConfig,
    Effect.gen(function* () {
      const d = EventsConfig.defaults
      return EventsConfig.of({
        replayWindow: yield* duration("EVENTS_REPLAY_WINDOW", d.replayWindow),
        maxEvents: yield* atLeastOne("EVENTS_MAX", d.maxEvents),
        subscriberBuffer: yield* atLeastOne("EVENTS_SUBSCRIBER_BUFFER", d.subscriberBuffer),
        heartbeat: yield* duration("EVENTS_HEARTBEAT", d.heartbeat),
        maxLifetime: yield* duration("EVENTS_MAX_LIFETIME", d.maxLifetime)
      })
    })
  )
}

/**
 * MAX_PAYLOAD_DEPTH: how deeply a job's payload may nest (a scalar is 0, `{}` is 1, `{"a": []}` is 2).
 * Default 100, the default of Ruby's JSON parser (`max_nesting`): real payloads nest a handful of levels,
 * while every level costs a stack frame in each walk over the payload (schema decoding, Postgres's `jsonb`
 * parser, which gives up some tens of thousands deep). The API refuses a body nesting deeper (422) before parsing it;
 * `Queue.enqueue` refuses such a payload (InvalidPayload) before decoding it. Optional: without this
 * service the default applies, so an embedding application need not provide it.
 */
export class PayloadConfig extends Context.Service<PayloadConfig, { readonly maxDepth: number }>()(
  "jobq/Config/PayloadConfig"
) {
  static readonly defaults = { maxDepth: 100 }
  static readonly layer = (settings: { readonly maxDepth?: number } = {}) =>
    Layer.succeed(PayloadConfig, PayloadConfig.of({ ...PayloadConfig.defaults, ...settings }))
  static readonly fromEnv = Layer.effect(
    PayloadConfig,
    Effect.gen(function* () {
      return PayloadConfig.of({
        maxDepth: yield* atLeastOne("MAX_PAYLOAD_DEPTH", PayloadConfig.defaults.maxDepth)
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
  /**
   * WORKER_ID: names this worker in leases; default `<hostname>-<pid>-<random>`. Unique among the workers
   * running at once: two live processes under one id take each other's jobs for their own (a restarted
   * process's first heartbeat begins a new lease, and each hands back running jobs of its id it never
   * claimed).
   */
  readonly workerId: string
  /** WORKER_CONCURRENCY: jobs run at once (default 10). */
  readonly concurrency: number
  /**
   * WORKER_PREFETCH: jobs claimed ahead of free slots and held (leased) in the worker, so claims come in
   * batches. `auto` (the default): the buffer adapts between 0 and 2,000 to observed job and claim times
   * (src/worker/ClaimSize.ts): big claims for short jobs (at most 250 ms of their work held, or two claims'
   * worth), none ahead of free slots for long ones. A number fixes it; 0 claims only for free slots.
   */
  readonly prefetch: number
  /** Whether `prefetch` is the adaptive buffer's ceiling (`auto`, the default) rather than a fixed size. */
  readonly adaptivePrefetch?: boolean
  /**
   * WORKER_CLAIMS_IN_FLIGHT: claims the worker may have sent and not yet received (1-4, default 2). Above 1,
   * the claims share one connection of their own, each written while the one before runs (pipelining):
   * Postgres runs them one after the other, so every claim still takes the best ready jobs when it starts,
   * and the database no longer waits for the worker to read one claim's rows before it gets the next.
   * Behind a transaction pooler (`DATABASE_POOLER=transaction`) and on the embedded database claims go one
   * at a time on the pool. docs/tradeoffs.md, "Claims in flight".
   */
  readonly claimsInFlight: number
  /** WORKER_QUEUES: comma-separated queues to serve; unset serves every queue. */
  readonly queues: ReadonlyArray<string> | undefined
  /** WORKER_POLL_INTERVAL: how often an idle worker looks for jobs when no notification came (default 1 second). */
  readonly pollInterval: Duration.Duration
  /**
   * WORKER_LEASE: how long the worker holds its jobs after its last heartbeat before another worker may rescue
   * them (default 30 seconds); the lease is the worker's row in `workers`, not one per job.
   */
  readonly lease: Duration.Duration
  /**
   * WORKER_LEASE_RENEW: how often the held jobs are looked at (cancel requests, jobs rescued from this
   * worker), a statement that writes nothing but starts to record (default 1 second). At most a fifth of
   * WORKER_LEASE: a longer one is refused at start (`leaseTimingProblem`).
   */
  readonly renewInterval: Duration.Duration
  /**
   * WORKER_QUEUE_REFRESH: how often the worker reads the queues' pauses and limits when no notification
   * told it of a change (default 1 second). Claims honour a pause at once whatever this is; it bounds how
   * long jobs this worker already claimed (buffered, not started) of a paused queue may still start when the
   * notification was lost.
   */
  readonly queueRefresh: Duration.Duration
  /**
   * WORKER_HEARTBEAT: how often the worker writes its row in `workers` (default 5 seconds), which also
   * extends the lease over its jobs; sooner when `WORKER_LEASE` asks for it (half a lease left). A worker that
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

/**
 * The adaptive claim buffer's ceiling (`WORKER_PREFETCH=auto`, the default), reached only by jobs so short that
 * the slots finish 2,000 of them within 250 ms (src/worker/ClaimSize.ts). With two claims in flight each takes
 * a share of it, so it is twice the 1,000 that one claim at a time drained best with (bench/RESULTS.md,
 * "Claims in flight").
 */
export const autoPrefetchCeiling = 2000

/** The most claims a worker keeps in flight (WORKER_CLAIMS_IN_FLIGHT): more measured no faster. */
export const maxClaimsInFlight = 4

const claimsInFlightProblem = (n: number, name: string) =>
  Number.isInteger(n) && n >= 1 && n <= maxClaimsInFlight
    ? undefined
    : `${name} must be an integer from 1 to ${maxClaimsInFlight}, got ${n}`

/** `<hostname>-<pid>-<random>`: the machine's name (the container id in Docker), unique per process. */
export const defaultWorkerId = () => `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`

/**
 * Why a lease and its look interval cannot work together, if they cannot: WORKER_LEASE_RENEW is at most a
 * fifth of WORKER_LEASE. The heartbeat extends the lease once no more is left than two looks of the lease
 * watch and two look intervals (src/worker/LeaseClock.ts); with a longer interval no heartbeat is early
 * enough, and the heartbeat would write the worker's row without pause (every millisecond).
 */
export const leaseTimingProblem = (
  lease: Duration.Duration,
  renewInterval: Duration.Duration,
  names = { lease: "WORKER_LEASE", renewInterval: "WORKER_LEASE_RENEW" }
) =>
  Duration.toMillis(renewInterval) * 5 <= Duration.toMillis(lease)
    ? undefined
    : `${names.renewInterval} (${Duration.format(renewInterval)}) must be at most a fifth of ${names.lease} ` +
      `(${Duration.format(lease)}): the heartbeat must extend the lease while two looks at the held jobs still ` +
      "fit in what is left of it"

export class WorkerConfig extends Context.Service<WorkerConfig, WorkerSettings>()(
  "jobq/Config/WorkerConfig"
) {
  static readonly defaults = (): WorkerSettings => ({
    workerId: defaultWorkerId(),
    concurrency: 10,
    prefetch: autoPrefetchCeiling,
    adaptivePrefetch: true,
    claimsInFlight: 2,
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
      // a size given in code is fixed unless `adaptivePrefetch: true` makes it the ceiling
      if (settings.prefetch !== undefined && settings.adaptivePrefetch === undefined)
        resolved.adaptivePrefetch = false
      const config = resolved as unknown as WorkerSettings
      // settings written in code: a programming error, raised where the layer is built
      const problem = leaseTimingProblem(config.lease, config.renewInterval, {
        lease: "lease",
        renewInterval: "renewInterval"
      })
      if (problem !== undefined) throw new Error(problem)
      const inFlight = claimsInFlightProblem(config.claimsInFlight, "claimsInFlight")
      if (inFlight !== undefined) throw new Error(inFlight)
      return WorkerConfig.of(config)
    })

  static readonly fromEnv = Layer.effect(
    WorkerConfig,
    Effect.gen(function* () {
      const d = WorkerConfig.defaults()
      const concurrency = yield* Config.Int("WORKER_CONCURRENCY").pipe(Config.withDefault(d.concurrency))
      const queues = yield* Config.option(Config.String("WORKER_QUEUES"))
      const lease = yield* duration("WORKER_LEASE", d.lease)
      const renewInterval = yield* duration("WORKER_LEASE_RENEW", d.renewInterval)
      const problem = leaseTimingProblem(lease, renewInterval)
      if (problem !== undefined) return yield* invalidSetting(problem)
      const claimsInFlight = yield* Config.Int("WORKER_CLAIMS_IN_FLIGHT").pipe(
        Config.withDefault(d.claimsInFlight)
      )
      const inFlight = claimsInFlightProblem(claimsInFlight, "WORKER_CLAIMS_IN_FLIGHT")
      if (inFlight !== undefined) return yield* invalidSetting(inFlight)
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
        ...(yield* Config.Int("WORKER_PREFETCH").pipe(
          Config.map((prefetch) => ({ prefetch, adaptivePrefetch: false })),
          Config.orElse(() =>
            Config.Literal("auto", "WORKER_PREFETCH").pipe(
              Config.map(() => ({ prefetch: autoPrefetchCeiling, adaptivePrefetch: true }))
            )
          ),
          Config.withDefault({ prefetch: d.prefetch, adaptivePrefetch: true })
        )),
        claimsInFlight,
        queues:
          queues._tag === "None"
            ? undefined
            : queues.value
                .split(",")
                .map((q) => q.trim())
                .filter((q) => q.length > 0),
        pollInterval: yield* duration("WORKER_POLL_INTERVAL", d.pollInterval),
        lease,
        renewInterval,
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

/** WORKER_METRICS_PORT, METRICS_MAX_QUEUES, QUEUE_METRICS_INTERVAL: what the programs export (docs/observability.md). */
export class MetricsConfig extends Context.Service<
  MetricsConfig,
  {
    /** WORKER_METRICS_PORT: the worker's `/metrics` and `/health` (default 9091); 0 turns the listener off. */
    readonly workerPort: number
    /**
     * METRICS_MAX_QUEUES: how many queue names (besides the worker's WORKER_QUEUES and `default`) get a
     * `queue` label value of their own (default 50); jobs of later ones are counted under `queue="other"`.
     * Queue names are chosen by clients, and each one costs about 50 series on every scrape.
     */
    readonly maxQueues: number
    /** QUEUE_METRICS_INTERVAL: how often queue depth is sampled (default 15 seconds); undefined (0): off. */
    readonly queueDepthInterval: Duration.Duration | undefined
  }
>()("jobq/Config/MetricsConfig") {
  static readonly defaults = { workerPort: 9091, maxQueues: 50, queueDepthInterval: Duration.seconds(15) }

  static readonly fromEnv = Layer.effect(
    MetricsConfig,
    Effect.gen(function* () {
      const workerPort = yield* Config.Int("WORKER_METRICS_PORT").pipe(
        Config.withDefault(MetricsConfig.defaults.workerPort)
      )
      if (workerPort < 0 || workerPort > 65535) {
        return yield* invalidSetting(
          `WORKER_METRICS_PORT must be a port (1-65535) or 0 for none, got ${workerPort}`
        )
      }
      // "0" alone (no unit) turns sampling off, as does any zero duration
      const interval = yield* Config.Duration("QUEUE_METRICS_INTERVAL").pipe(
        Config.orElse(() =>
          Config.Literal("0", "QUEUE_METRICS_INTERVAL").pipe(Config.map(() => Duration.zero))
        ),
        Config.withDefault(MetricsConfig.defaults.queueDepthInterval)
      )
      return MetricsConfig.of({
        workerPort,
        maxQueues: yield* atLeastOne("METRICS_MAX_QUEUES", MetricsConfig.defaults.maxQueues),
        queueDepthInterval: Duration.toMillis(interval) > 0 ? interval : undefined
      })
    })
  )

  static readonly layer = (settings: Partial<MetricsConfig["Service"]> = {}) =>
    Layer.succeed(MetricsConfig, MetricsConfig.of({ ...MetricsConfig.defaults, ...settings }))
}

/**
 * Which programs read what, below: settings that pick a layer rather than configure one, read by the layer
 * that picks (still only when it is built).
 */

/** JOBS_MODULE: the module whose `kinds` export (or default export) the programs run; unset: the demo kinds. */
export const jobsModule = Config.option(Config.String("JOBS_MODULE"))

/** DATABASE_URL, only whether it is set: `npm start` runs on the embedded database when it is not. */
export const databaseUrlGiven = Config.option(Config.String("DATABASE_URL")).pipe(
  Config.map((url) => url._tag === "Some" && url.value !== "")
)

/** PGLITE_DATA_DIR: where `npm start` keeps the embedded database (default ./.data/pglite). */
export const pgliteDataDir = Config.String("PGLITE_DATA_DIR").pipe(Config.withDefault("./.data/pglite"))

/**
 * The value of `name` among `choices`, in any case (`warn`, `WARN`, `Warn`: every tool spells levels its
 * own way); anything else fails naming the variable and its choices.
 */
const choice = <A>(
  name: string,
  choices: Readonly<Record<string, A>>,
  fallback: keyof typeof choices & string
) =>
  Effect.gen(function* () {
    const given = yield* Config.String(name).pipe(Config.withDefault(fallback))
    const key = given.trim().toLowerCase()
    if (Object.hasOwn(choices, key)) return choices[key]!
    return yield* invalidSetting(
      `${name}=${JSON.stringify(given)} is not one of ${Object.keys(choices).join(", ")} (any case)`
    )
  })

const logLevels = {
  all: "All",
  trace: "Trace",
  debug: "Debug",
  info: "Info",
  warn: "Warn",
  warning: "Warn",
  error: "Error",
  fatal: "Fatal",
  none: "None"
} as const satisfies Record<string, LogLevel.LogLevel>

/** LOG_LEVEL (default info) and LOG_FORMAT (json, default, or pretty), in any case. */
export const loggingSettings = Effect.gen(function* () {
  return {
    level: yield* choice("LOG_LEVEL", logLevels, "info"),
    format: yield* choice("LOG_FORMAT", { json: "json", pretty: "pretty" } as const, "json")
  }
})

/**
 * OTEL_EXPORTER_OTLP_ENDPOINT / _TRACES_ENDPOINT (tracing is on when either is set; the exporter reads the
 * URL itself), OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL (http/json, our default,
 * or http/protobuf), OTEL_SERVICE_NAME. The SDK reads the other OTEL_* variables (headers, sampler) itself.
 */
export const tracingSettings = (defaultServiceName: string) =>
  Effect.gen(function* () {
    const endpoint = yield* Config.option(Config.String("OTEL_EXPORTER_OTLP_ENDPOINT"))
    const tracesEndpoint = yield* Config.option(Config.String("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
    if (endpoint._tag === "None" && tracesEndpoint._tag === "None") return undefined
    const general = yield* Config.option(Config.String("OTEL_EXPORTER_OTLP_PROTOCOL"))
    const traces = yield* Config.option(Config.String("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
    const protocol = (
      traces._tag === "Some" ? traces.value : general._tag === "Some" ? general.value : "http/json"
    ).trim()
    if (protocol !== "http/json" && protocol !== "http/protobuf") {
      return yield* invalidSetting(
        `OTLP protocol ${JSON.stringify(protocol)} (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL) is not supported: use http/json or http/protobuf, with the receiver's OTLP/HTTP port (4318 by convention)`
      )
    }
    return {
      protocol: protocol as "http/json" | "http/protobuf",
      serviceName: yield* Config.String("OTEL_SERVICE_NAME").pipe(Config.withDefault(defaultServiceName))
    }
  })
