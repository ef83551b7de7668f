/**
 * An Effect `HttpServer` served by `Bun.serve` through the web-standard handler (`Request -> Response`).
 * `@effect/platform-bun` has no release that loads with effect 4.1.0, and this is all it would do here.
 */
import { Effect, Layer, type Scope } from "effect"
import { HttpEffect, HttpServer, type HttpServerRequest } from "effect/http"
import { NetAddress } from "effect/net"

// answered before the app is mounted (startup) or after it is unmounted (shutdown)
const unavailable = async () =>
  new Response(JSON.stringify({ error: "unavailable", message: "the server is starting or stopping" }), {
    status: 503,
    headers: { "content-type": "application/json", "retry-after": "1" }
  })

export interface BunServerOptions {
  readonly port: number
  readonly hostname?: string | undefined
  /** Largest request body Bun accepts before our own limits apply (bytes). */
  readonly maxRequestBodySize?: number | undefined
  /**
   * Seconds a connection may stay silent before Bun closes it (Bun's default: 10), a request still waiting
   * for its answer included: the client is then left without one.
   */
  readonly idleTimeout?: number | undefined
}

export const make = (options: BunServerOptions) =>
  Effect.gen(function* () {
    let current: (request: Request) => Promise<Response> = unavailable
    const server = yield* Effect.acquireRelease(
      Effect.sync(() =>
        Bun.serve({
          port: options.port,
          hostname: options.hostname ?? "0.0.0.0",
          ...(options.maxRequestBodySize === undefined
            ? {}
            : { maxRequestBodySize: options.maxRequestBodySize }),
          ...(options.idleTimeout === undefined ? {} : { idleTimeout: options.idleTimeout }),
          fetch: (request) => current(request)
        })
      ),
      (server) => Effect.promise(() => server.stop())
    )
    return HttpServer.make({
      address: NetAddress.inetAddressFromIpStringUnsafe(
        server.hostname ?? "0.0.0.0",
        server.port ?? options.port
      ),
      serve: (app, middleware) =>
        Effect.gen(function* () {
          const services = yield* Effect.context<never>()
          current = HttpEffect.toWebHandlerWith<never, HttpServerRequest.HttpServerRequest | Scope.Scope>(
            services
          )(app, middleware)
          yield* Effect.addFinalizer(() =>
            Effect.sync(() => {
              current = unavailable
            })
          )
        })
    })
  })

export const layer = (options: BunServerOptions) =>
  Layer.merge(Layer.effect(HttpServer.HttpServer, make(options)), HttpServer.layerServices)
