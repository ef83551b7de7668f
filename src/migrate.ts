/** `npm run migrate` (Bun), `migrate:node`, `migrate:deno`: apply pending migrations to DATABASE_URL and exit. */
import { Console, Effect } from "effect"
import * as Database from "./db/Database.ts"
import * as Migrator from "./db/Migrator.ts"
import * as Main from "./platform/Main.ts"
import * as Logging from "./telemetry/Logging.ts"

const program = Migrator.migrate().pipe(
  Effect.tap(({ applied, alreadyApplied }) =>
    applied.length === 0
      ? Effect.logInfo(`schema is up to date (${alreadyApplied} migrations applied earlier)`)
      : Effect.logInfo(`applied ${applied.map((m) => m.file).join(", ")}`)
  ),
  Effect.provide(Database.layerFromEnv("jobq-migrate")),
  Effect.provide(Logging.layerFromEnv),
  // one clear line on stderr and a non-zero exit, instead of a stack trace
  Effect.catch((error) =>
    Console.error(
      `migrate: ${error._tag === "MigrationError" ? error.message : Migrator.rootMessage(error)}`
    ).pipe(Effect.andThen(Effect.sync(() => process.exit(1))))
  )
)

Main.runMain(program)
