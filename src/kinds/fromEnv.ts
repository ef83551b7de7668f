/** `JobKinds` from `JOBS_MODULE` (a module path), or the demo kinds when it is unset; its `schedules` too. */
import { pathToFileURL } from "node:url"
import { Effect, Layer, Option } from "effect"
import { jobsModule } from "../Config.ts"
import { JobKinds, loadKinds } from "../domain/JobKind.ts"
import { CodeSchedules, type ScheduleDefinition } from "../domain/Schedule.ts"
import { demoKinds } from "./DemoKinds.ts"

export const layer = Layer.effect(
  JobKinds,
  Effect.gen(function* () {
    const modulePath = yield* jobsModule
    const kinds = Option.isNone(modulePath) ? demoKinds : yield* Effect.orDie(loadKinds(modulePath.value))
    return JobKinds.make(kinds)
  })
)

/** The `schedules` export of `JOBS_MODULE` (none when it is unset or exports none); checked at worker start. */
export const schedulesLayer = Layer.effect(
  CodeSchedules,
  Effect.gen(function* () {
    const modulePath = yield* jobsModule
    if (Option.isNone(modulePath)) return []
    const path = modulePath.value
    const mod = yield* Effect.orDie(
      Effect.tryPromise({
        try: () =>
          import(path.startsWith("file:") ? path : pathToFileURL(path).href) as Promise<{
            schedules?: unknown
          }>,
        catch: (cause) => new Error(`cannot load schedules from ${path}: ${String(cause)}`)
      })
    )
    if (mod.schedules === undefined) return []
    if (!Array.isArray(mod.schedules))
      return yield* Effect.die(new Error(`${path}: its "schedules" export is not an array`))
    return mod.schedules as ReadonlyArray<ScheduleDefinition>
  })
)
