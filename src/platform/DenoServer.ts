/**
 * An Effect `HttpServer` served by `Deno.serve` through the web-standard handler. Deno has no request body
 * limit and no idle timeout of its own, so the API's own limits are the only ones (`maxRequestBodySize`
 * and `idleTimeout` have nothing to set here). Needs `--allow-net` (and nothing else).
 */
import type { ServerOptions } from "./Server.ts"
import * as WebServer from "./WebServer.ts"

/** The part of Deno's API this module uses (the project's types are Bun's, which know no `Deno`). */
interface DenoServe {
  serve(
    options: { port: number; hostname: string; onListen: (address: unknown) => void },
    handler: (request: Request) => Promise<Response>
  ): { readonly addr: { hostname: string; port: number }; shutdown(): Promise<void> }
}

export const layer = (options: ServerOptions) =>
  WebServer.layer((fetch) => {
    const deno = (globalThis as unknown as { readonly Deno: DenoServe }).Deno
    const server = deno.serve(
      // onListen: say nothing (Deno prints "Listening on ..." otherwise; the programs log their own line)
      { port: options.port, hostname: options.hostname ?? "0.0.0.0", onListen: () => {} },
      fetch
    )
    return { hostname: server.addr.hostname, port: server.addr.port, stop: () => server.shutdown() }
  })
