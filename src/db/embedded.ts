/**
 * The zero-setup database: an embedded Postgres (PGlite, Postgres compiled to WebAssembly) stored in a
 * directory, for `npm start` without DATABASE_URL. One process only: the API and the worker share it, and a
 * second process on the same directory refuses to start (`DirectoryLock`).
 */
import { mkdir } from "node:fs/promises"
import { Effect, Layer } from "effect"
import { pgliteDataDir } from "../Config.ts"
import * as DirectoryLock from "./DirectoryLock.ts"
import * as PgliteClient from "./PgliteClient.ts"

/**
 * The database in `directory`, held under its lock (`DirectoryLock`) from before it opens until after it
 * closes. `setting` names the variable that chose the directory, for the message a second process gets.
 */
export const layer = (directory: string, setting = "PGLITE_DATA_DIR") =>
  PgliteClient.layer(async () => {
    // loaded only here, so the server programs never load the WebAssembly build
    const { PGlite } = await import("@electric-sql/pglite")
    return PGlite.create(directory)
  }).pipe(
    Layer.provide(
      Layer.effectDiscard(
        Effect.tryPromise(() => mkdir(directory, { recursive: true })).pipe(
          Effect.andThen(DirectoryLock.acquire(directory, setting))
        )
      )
    )
  )

/** PGLITE_DATA_DIR (default ./.data/pglite). */
export const layerFromEnv = Layer.unwrap(
  Effect.gen(function* () {
    const directory = yield* pgliteDataDir
    yield* Effect.logInfo(`no DATABASE_URL: using the embedded Postgres (PGlite) in ${directory}`)
    return layer(directory)
  })
)
