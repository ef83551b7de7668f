/** `JobKinds` from `JOBS_MODULE` (a module path), or the demo kinds when it is unset. */
import { Config, Effect, Layer, Option } from "effect"
import { demoKinds } from "./DemoKinds.ts"
import { JobKinds, loadKinds } from "./JobKind.ts"

export const layer = Layer.effect(
  JobKinds,
  Effect.gen(function* () {
    const modulePath = yield* Config.option(Config.String("JOBS_MODULE"))
    const kinds = Option.isNone(modulePath) ? demoKinds : yield* Effect.orDie(loadKinds(modulePath.value))
    return JobKinds.make(kinds)
  })
)
