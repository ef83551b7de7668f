/**
 * Serving an Effect HTTP app on whichever runtime runs the program, picked when the layer is built: Bun
 * (`Bun.serve`), Deno (`Deno.serve`) or Node (`node:http`). Each runtime's module is imported only on that
 * runtime: Bun and Deno never load `@effect/platform-node`.
 */
import { Effect, Layer } from "effect"
import type { HttpServer, HttpServerError } from "effect/http"
import * as BunServer from "./BunServer.ts"
import * as DenoServer from "./DenoServer.ts"

export interface ServerOptions {
  readonly port: number
  readonly hostname?: string | undefined
  /** Largest request body the runtime accepts before our own limits apply (bytes; Bun only). */
  readonly maxRequestBodySize?: number | undefined
  /**
   * Seconds a connection may stay silent before Bun closes it (default 10), a request still waiting for its
   * answer included. Node and Deno never cut a connection that waits for its answer: nothing to set.
   */
  readonly idleTimeout?: number | undefined
}

/** What a server layer provides: the server and the services serving needs. */
export type Served = HttpServer.HttpServer | Layer.Success<typeof HttpServer.layerServices>

export type Runtime = "bun" | "deno" | "node"

/** The runtime this process runs on. */
export const runtime: Runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node"

/**
 * The server layer for this runtime. Bun's and Deno's are plain modules over a global (loaded always, used
 * on their runtime only) and bind as soon as the layer is built. Node's pulls in `@effect/platform-node`, so
 * it is imported only on Node, when the layer is built: there the bind comes a module load later. Whatever
 * must not start before the bind is built after this layer (the worker's pool: WorkerHttp.layer).
 */
export const layer = (options: ServerOptions): Layer.Layer<Served, HttpServerError.ServeError> => {
  switch (runtime) {
    case "bun":
      return BunServer.layer(options)
    case "deno":
      return DenoServer.layer(options)
    case "node":
      return Layer.unwrap(Effect.promise(async () => (await import("./NodeServer.ts")).layer(options)))
  }
}
