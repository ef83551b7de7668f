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
    handler: (request: Request, info: { readonly completed: Promise<void> }) => Promise<Response>
  ): { readonly addr: { hostname: string; port: number }; shutdown(): Promise<void> }
}

/**
 * The request with a signal that aborts only when the client goes away before its answer is delivered
 * (Deno's own `request.signal` also aborts after every successful response, and warns when it is
 * listened to: Effect listens to it to interrupt a request whose client left).
 */
const withClientAbort = (request: Request, completed: Promise<void>) => {
  const controller = new AbortController()
  completed.catch(() => controller.abort())
  // from its parts: `new Request(request, ...)` reads the original's signal, which is what warns
  return new Request(request.url, {
    method: request.method,
    headers: request.headers,
    body: request.body,
    signal: controller.signal,
    // a streamed body (Deno's, like the standard's, needs this for a ReadableStream body)
    ...(request.body === null ? {} : { duplex: "half" })
  } as RequestInit)
}

export const layer = (options: ServerOptions) =>
  WebServer.layer((fetch) => {
    const deno = (globalThis as unknown as { readonly Deno: DenoServe }).Deno
    const server = deno.serve(
      // onListen: say nothing (Deno prints "Listening on ..." otherwise; the programs log their own line)
      { port: options.port, hostname: options.hostname ?? "0.0.0.0", onListen: () => {} },
      (request, info) => fetch(withClientAbort(request, info.completed))
    )
    return { hostname: server.addr.hostname, port: server.addr.port, stop: () => server.shutdown() }
  })
