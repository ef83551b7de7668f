/**
 * `npm start` (Bun; `npm run start:node`, `npm run start:deno`): migrations, then the API and a worker pool
 * in one process. With DATABASE_URL it uses that
 * server; without, an embedded Postgres (PGlite) under ./.data/ (PGLITE_DATA_DIR), so a machine with only
 * Node and npm runs the whole service. `npm run api` and `npm run worker` always need a real server.
 */
import { Effect, Layer } from "effect"
import { databaseUrlGiven } from "./Config.ts"
import * as Database from "./db/Database.ts"
import * as Embedded from "./db/embedded.ts"
import * as Migrator from "./db/Migrator.ts"
import * as ApiProgram from "./http/program.ts"
import * as Main from "./platform/Main.ts"
import * as Logging from "./telemetry/Logging.ts"
import * as Tracing from "./telemetry/Tracing.ts"
import * as WorkerProgram from "./worker/program.ts"

const DatabaseLive = Layer.unwrap(
  Effect.gen(function* () {
    return (yield* databaseUrlGiven) ? Database.layerFromEnv("jobq-dev") : Embedded.layerFromEnv
  })
)

const MigrateLive = Layer.effectDiscard(
  Migrator.migrate().pipe(
    Effect.tap(({ applied }) =>
      applied.length === 0 ? Effect.void : Effect.logInfo(`applied ${applied.map((m) => m.file).join(", ")}`)
    )
  )
)

// The API is built first, so it closes last: it keeps answering while the worker drains on Ctrl-C (you can
// watch the running jobs finish, or cancel them), and stops once the worker is done. The worker has no
// listener of its own here: the API's /metrics on PORT carries its metrics (one process, one scrape).
const DevLive = WorkerProgram.poolFromEnv.pipe(
  Layer.provideMerge(ApiProgram.layerFromEnv),
  Layer.provide(MigrateLive),
  Layer.provide(DatabaseLive),
  Layer.provide(Tracing.layerFromEnv("jobq")),
  Layer.provide(Logging.layerFromEnv)
)

Main.runMain(Layer.launch(DevLive))
