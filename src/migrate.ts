/** `bun run migrate`: apply pending migrations to DATABASE_URL and exit. */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import * as Database from "./db/Database.ts"
import * as Migrator from "./db/Migrator.ts"

const program = Migrator.migrate().pipe(
  Effect.tap(({ applied, alreadyApplied }) =>
    applied.length === 0
      ? Effect.logInfo(`schema is up to date (${alreadyApplied} migrations applied earlier)`)
      : Effect.logInfo(`applied ${applied.map((m) => `${m.version}_${m.name}`).join(", ")}`)
  ),
  Effect.tapError((error) => Effect.logError(error.message)),
  Effect.provide(Database.layerFromEnv("jobq-migrate"))
)

NodeRuntime.runMain(program)
