/** DASHBOARD_TRACE_URL, as the API reads it: unset is no link; anything but an http(s) URL with `{traceId}` refuses to start, naming it. */
import { describe, expect, it } from "bun:test"
import { Cause, ConfigProvider, Effect, Exit, Layer } from "effect"
import { ApiConfig } from "../src/Config.ts"

const traceUrlWith = (env: Record<string, string>) =>
  Effect.runPromise(
    Effect.exit(
      ApiConfig.use((config) => Effect.succeed(config.dashboardTraceUrl)).pipe(
        Effect.provide(
          ApiConfig.fromEnv.pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env))))
        )
      )
    )
  )

describe("DASHBOARD_TRACE_URL", () => {
  it("is no link when unset or empty, and the template as given when valid", async () => {
    expect(await traceUrlWith({})).toEqual(Exit.succeed(null))
    expect(await traceUrlWith({ DASHBOARD_TRACE_URL: "  " })).toEqual(Exit.succeed(null))
    const template = "https://tempo.example/trace/{traceId}?from=now-1h"
    expect(await traceUrlWith({ DASHBOARD_TRACE_URL: template })).toEqual(Exit.succeed(template))
  })

  it("refuses anything else, naming the setting", async () => {
    for (const value of [
      "https://tempo.example/trace/",
      "javascript:alert(1)//{traceId}",
      "ftp://host/{traceId}",
      "{traceId}",
      `https://x/${"a".repeat(100_000)}`
    ]) {
      const exit = await traceUrlWith({ DASHBOARD_TRACE_URL: value })
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) expect(Cause.pretty(exit.cause)).toContain("DASHBOARD_TRACE_URL")
    }
  })
})
