/**
 * An Effect `HttpServer` served by `Bun.serve` through the web-standard handler (`Request -> Response`).
 * `@effect/platform-bun` has no release that loads with effect 4.1.0, and this is all it would do here.
 */
import type { ServerOptions } from "./Server.ts"
import * as WebServer from "./WebServer.ts"

/** @deprecated the options of every runtime's server: `Server.ServerOptions`. */
export type BunServerOptions = ServerOptions

export const layer = (options: ServerOptions) =>
  WebServer.layer((fetch) => {
    const server = Bun.serve({
      port: options.port,
      hostname: options.hostname ?? "0.0.0.0",
      ...(options.maxRequestBodySize === undefined ? {} : { maxRequestBodySize: options.maxRequestBodySize }),
      ...(options.idleTimeout === undefined ? {} : { idleTimeout: options.idleTimeout }),
      fetch
    })
    return {
      hostname: server.hostname ?? options.hostname ?? "0.0.0.0",
      port: server.port ?? options.port,
      stop: () => server.stop()
    }
  })
