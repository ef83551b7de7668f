/**
 * Job kinds for the benchmarks, loaded by the worker through JOBS_MODULE and by the harness's enqueuer:
 * the demo kinds plus `stamp`, whose handler returns the moment it started (epoch ms with sub-ms digits)
 * so pickup latency can be read from the job's result afterwards, and `drain_noop` (below).
 */
import { writeFileSync } from "node:fs"
import { Effect, Schema } from "effect"
import { defineKind } from "../src/domain/JobKind.ts"
import { demoKinds } from "../src/kinds/DemoKinds.ts"

export const now = () => performance.timeOrigin + performance.now()

export const stamp = defineKind({
  name: "stamp",
  description: "Benchmark: returns when its handler started.",
  payload: Schema.Struct({}),
  handler: () => Effect.sync(() => ({ handlerStartedAt: now() }))
})

/** Where `drain_noop` writes its first call's time; set per worker process by the drain harness. */
export const firstCallFileVariable = "BENCH_FIRST_CALL_FILE"
let firstCallWritten = false

/**
 * Benchmark: a no-op that writes the moment of its process's first call (epoch ms) to the file named by
 * BENCH_FIRST_CALL_FILE, so our drain's clock can start where the peers' harnesses start theirs: at the
 * first handler call. Every later call only tests a flag.
 */
export const drainNoop = defineKind({
  name: "drain_noop",
  description: "Benchmark: a no-op that records its process's first call.",
  payload: Schema.Struct({}),
  handler: () =>
    Effect.sync(() => {
      if (firstCallWritten) return
      firstCallWritten = true
      const file = process.env[firstCallFileVariable]
      if (file !== undefined) writeFileSync(file, String(now()))
    })
})

/** How long a `progress_*` bench job runs, and how often the reporting one reports. */
export const progressJobMs = 1000
export const progressEveryMs = 100
let progressFirstCallWritten = false

/**
 * Benchmark (the progress scenario): a job that runs `progressJobMs` in steps of `progressEveryMs`,
 * reporting `{ step, of }` after each step or not, and records its process's first call as `drain_noop`
 * does. The two kinds differ only in the report.
 */
const progressKind = (name: string, reports: boolean) =>
  defineKind({
    name,
    description: `Benchmark: runs ${progressJobMs} ms in ${progressEveryMs} ms steps${reports ? ", reporting progress after each" : ""}.`,
    payload: Schema.Struct({}),
    handler: (_, { progress }) =>
      Effect.gen(function* () {
        if (!progressFirstCallWritten) {
          progressFirstCallWritten = true
          const file = process.env[firstCallFileVariable]
          if (file !== undefined) writeFileSync(file, String(now()))
        }
        const steps = Math.round(progressJobMs / progressEveryMs)
        for (let step = 1; step <= steps; step++) {
          yield* Effect.sleep(progressEveryMs)
          if (reports) yield* progress({ step, of: steps })
        }
      })
  })

export const progressReporting = progressKind("progress_reporting", true)
export const progressQuiet = progressKind("progress_quiet", false)

export const kinds = [...demoKinds, stamp, drainNoop, progressReporting, progressQuiet]
export const modulePath = new URL("./BenchKinds.ts", import.meta.url).pathname
