/** `JobKinds` from `JOBS_MODULE` (a module path), or the demo kinds when it is unset. */
import { Effect, Layer, Option } from "effect"
import { jobsModule } from "../Config.ts"
import { JobKinds, loadKinds } from "../domain/JobKind.ts"
import { demoKinds } from "./DemoKinds.ts"

export const layer = Layer.effect(
  JobKinds,
  Effect.gen(function* () {
    const modulePath = yield* jobsModule
    const kinds = Option.isNone(modulePath) ? demoKinds : yield* Effect.orDie(loadKinds(modulePath.value))
    return JobKinds.make(kinds)
  })
)
