/**
 * Job kinds for the benchmarks, loaded by the worker through JOBS_MODULE and by the harness's enqueuer:
 * the demo kinds plus `stamp`, whose handler returns the moment it started (epoch ms with sub-ms digits)
 * so pickup latency can be read from the job's result afterwards.
 */
import { Effect, Schema } from "effect"
import { demoKinds } from "../src/domain/DemoKinds.ts"
import { defineKind } from "../src/domain/JobKind.ts"

export const now = () => performance.timeOrigin + performance.now()

export const stamp = defineKind({
  name: "stamp",
  description: "Benchmark: returns when its handler started.",
  payload: Schema.Struct({}),
  handler: () => Effect.sync(() => ({ handlerStartedAt: now() }))
})

export const kinds = [...demoKinds, stamp]
export const modulePath = new URL("./BenchKinds.ts", import.meta.url).pathname
