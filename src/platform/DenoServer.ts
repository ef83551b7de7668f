/**
 * An Effect `HttpServer` served by `Deno.serve` through the web-standard handler. Deno has no request body
 * limit and no idle timeout of its own, so the API's own limits are the only ones (`maxRequestBodySize`
 * and `idleTimeout` have nothing to set here). Needs `--allow-net` (and nothing else).
 *
 * Effect listens to `request.signal` to interrupt a request whose client went away (a `GET /jobs/{id}/wait`
 * then stops waiting). Deno's signal also aborts after every successful response (its "legacy" behaviour,
 * harmless here: the request's fiber is done by then) and Deno prints one warning about it per process.
 * A request rebuilt with a signal of our own avoids the warning but loses the interruption (Deno's
 * `info.completed` only settles once the handler answered), so we keep Deno's signal and its warning;
 * `--unstable-no-legacy-abort` silences it.
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
