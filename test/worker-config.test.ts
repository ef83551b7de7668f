/**
 * Worker settings refused where they are read. A lease and its look interval that cannot work together:
 * with WORKER_LEASE_RENEW over a fifth of WORKER_LEASE no heartbeat comes early enough, and the heartbeat
 * wrote the worker's row every millisecond (found measuring pickup with WORKER_LEASE_RENEW=10 seconds).
 */
import { describe, expect, it } from "bun:test"
import { ConfigProvider, Effect, Exit, Layer } from "effect"
import { WorkerConfig } from "../src/Config.ts"
import { timing } from "../src/worker/LeaseClock.ts"

const read = (layer: Layer.Layer<WorkerConfig, unknown>) =>
  Effect.runPromise(
    Effect.exit(
      Effect.gen(function* () {
        return yield* WorkerConfig
      }).pipe(Effect.provide(layer))
    )
  )

const fromEnv = (env: Record<string, string>) =>
  read(WorkerConfig.fromEnv.pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env)))))

const failure = (exit: Exit.Exit<unknown, unknown>) => (Exit.isFailure(exit) ? String(exit.cause) : "")

describe("the worker's lease settings", () => {
  it("refuse WORKER_LEASE_RENEW over a fifth of WORKER_LEASE from the environment, naming both", async () => {
    const exit = await fromEnv({ WORKER_LEASE: "30 seconds", WORKER_LEASE_RENEW: "10 seconds" })
    expect(failure(exit)).toContain("WORKER_LEASE_RENEW (10s) must be at most a fifth of WORKER_LEASE (30s)")
    expect(failure(await fromEnv({ WORKER_LEASE: "1 second" }))).toContain("at most a fifth of WORKER_LEASE")
  })

  it("take a fifth exactly, and the defaults; the heartbeat then comes no sooner than a fifth of the lease", async () => {
    const exit = await fromEnv({ WORKER_LEASE: "1500 millis", WORKER_LEASE_RENEW: "300 millis" })
    expect(Exit.isSuccess(exit)).toBe(true)
    expect(timing(1500, 300, 5000).beatEveryMs).toBe(300)
    expect(Exit.isSuccess(await fromEnv({}))).toBe(true)
    expect(timing(30_000, 1000, 5000).beatEveryMs).toBe(5000)
  })

  it("refuse the same in code, naming the settings as written there", async () => {
    const exit = await read(WorkerConfig.layer({ lease: "2 seconds", renewInterval: "1 second" }))
    expect(failure(exit)).toContain("renewInterval (1s) must be at most a fifth of lease (2s)")
    expect(
      Exit.isSuccess(await read(WorkerConfig.layer({ lease: "2 seconds", renewInterval: "400 millis" })))
    ).toBe(true)
  })
})

describe("the worker's claims in flight", () => {
  it("take 1 to 4 from the environment, 2 by default, and refuse anything else naming the variable", async () => {
    const inFlight = async (env: Record<string, string>) => {
      const exit = await fromEnv(env)
      return Exit.isSuccess(exit) ? exit.value.claimsInFlight : failure(exit)
    }
    expect(await inFlight({})).toBe(2)
    expect(await inFlight({ WORKER_CLAIMS_IN_FLIGHT: "1" })).toBe(1)
    expect(await inFlight({ WORKER_CLAIMS_IN_FLIGHT: "4" })).toBe(4)
    expect(await inFlight({ WORKER_CLAIMS_IN_FLIGHT: "0" })).toContain(
      "WORKER_CLAIMS_IN_FLIGHT must be an integer from 1 to 4, got 0"
    )
    expect(await inFlight({ WORKER_CLAIMS_IN_FLIGHT: "5" })).toContain("from 1 to 4, got 5")
  })

  it("refuse a value that is no integer, naming the variable; empty (as compose passes an unset one) is the default", async () => {
    for (const value of ["two", "1.5", " 2 ", "99999999999999999999"]) {
      const exit = await fromEnv({ WORKER_CLAIMS_IN_FLIGHT: value })
      expect(Exit.isFailure(exit)).toBe(true)
      expect(failure(exit)).toContain("WORKER_CLAIMS_IN_FLIGHT")
    }
    const unset = await fromEnv({ WORKER_CLAIMS_IN_FLIGHT: "" })
    expect(Exit.isSuccess(unset) && unset.value.claimsInFlight).toBe(2)
  })

  it("refuse the same in code", async () => {
    expect(failure(await read(WorkerConfig.layer({ claimsInFlight: 0 })))).toContain(
      "claimsInFlight must be an integer from 1 to 4, got 0"
    )
    expect(failure(await read(WorkerConfig.layer({ claimsInFlight: 1.5 })))).toContain("got 1.5")
    expect(Exit.isSuccess(await read(WorkerConfig.layer({ claimsInFlight: 1 })))).toBe(true)
  })
})
