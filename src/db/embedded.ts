/**
 * The zero-setup database: an embedded Postgres (PGlite, Postgres compiled to WebAssembly) stored in a
 * directory, for `npm start` without DATABASE_URL. One process only: the API and the worker must share it.
 */
import { mkdir } from "node:fs/promises"
import { Config, Effect, Layer } from "effect"
import * as PgliteClient from "./PgliteClient.ts"

export const defaultDirectory = "./.data/pglite"

export const layer = (directory: string) =>
  PgliteClient.layer(async () => {
    await mkdir(directory, { recursive: true })
    // loaded only here, so the server programs never load the WebAssembly build
    const { PGlite } = await import("@electric-sql/pglite")
    return PGlite.create(directory)
  })

/** PGLITE_DATA_DIR (default ./.data/pglite). */
export const layerFromEnv = Layer.unwrap(
  Effect.gen(function* () {
    const directory = yield* Config.String("PGLITE_DATA_DIR").pipe(Config.withDefault(defaultDirectory))
    yield* Effect.logInfo(`no DATABASE_URL: using the embedded Postgres (PGlite) in ${directory}`)
    return layer(directory)
  })
)
