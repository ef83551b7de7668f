/**
 * An Effect `HttpServer` over any runtime that serves a web-standard handler (`Request -> Promise<Response>`):
 * Bun's `Bun.serve` and Deno's `Deno.serve` (see BunServer.ts, DenoServer.ts). The listener is bound when
 * the layer is built and answers 503 until the app is mounted, and again once it is unmounted (shutdown).
 */
import { Effect, Layer, type Scope } from "effect"
import { HttpEffect, HttpServer, HttpServerError, type HttpServerRequest } from "effect/http"
import { NetAddress } from "effect/net"

export type Fetch = (request: Request) => Promise<Response>

/** A bound listener: where it listens, and how it stops (letting in-flight requests finish). */
export interface Listener {
  readonly hostname: string
  readonly port: number
  readonly stop: () => Promise<void>
}

// answered before the app is mounted (startup) or after it is unmounted (shutdown)
const unavailable: Fetch = async () =>
  new Response(JSON.stringify({ error: "unavailable", message: "the server is starting or stopping" }), {
    status: 503,
    headers: { "content-type": "application/json", "retry-after": "1" }
  })

/** `listen` binds (synchronously; it throws when it cannot) and sends every request to the fetch it is given. */
export const make = (listen: (fetch: Fetch) => Listener) =>
  Effect.gen(function* () {
    let current: Fetch = unavailable
    const listener = yield* Effect.acquireRelease(
      Effect.try({
        try: () => listen((request) => current(request)),
        catch: (cause) => new HttpServerError.ServeError({ cause })
      }),
      (listener) => Effect.promise(() => listener.stop())
    )
    return HttpServer.make({
      address: NetAddress.inetAddressFromIpStringUnsafe(listener.hostname, listener.port),
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

/** The `HttpServer` with the services a server needs (the API serves no files: a no-op file system). */
export const layer = (listen: (fetch: Fetch) => Listener) =>
  Layer.merge(Layer.effect(HttpServer.HttpServer, make(listen)), HttpServer.layerServices)
