/**
 * Every setting the programs read from the environment, with its default. Values are read only when a
 * layer is built, never at import time, so tests and embedding applications can provide their own.
 * `.env.example` documents the same names.
 */
import { Config, Context, Duration, Effect, Layer, type Redacted } from "effect"

const duration = (name: string, fallback: Duration.Input) =>
  Config.Duration(name).pipe(Config.withDefault(Duration.fromInputUnsafe(fallback)))

/** DATABASE_URL, DATABASE_POOL_MAX, DATABASE_CONNECT_TIMEOUT. */
export class DatabaseConfig extends Context.Service<
  DatabaseConfig,
  {
    readonly url: Redacted.Redacted<string>
    readonly maxConnections: number
    readonly connectTimeout: Duration.Duration
    readonly applicationName: string
  }
>()("jobq/Config/DatabaseConfig") {
  static readonly fromEnv = (applicationName: string) =>
    Layer.effect(
      DatabaseConfig,
      Effect.gen(function* () {
        return DatabaseConfig.of({
          url: yield* Config.Redacted("DATABASE_URL"),
          maxConnections: yield* Config.Int("DATABASE_POOL_MAX").pipe(Config.withDefault(10)),
          connectTimeout: yield* duration("DATABASE_CONNECT_TIMEOUT", "5 seconds"),
          applicationName
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
