/**
 * An Effect `HttpServer` on Node's `node:http`, by `@effect/platform-node` (Node has no `Request ->
 * Response` server of its own). No body limit of Node's (the API enforces `MAX_BODY_BYTES` itself), and a
 * connection waiting for its answer is not cut (`server.timeout` is off by default), so `maxRequestBodySize`
 * and `idleTimeout` have nothing to set here. Node reads the request through its own `IncomingMessage`
 * (not a web `Request`); the smoke suite checks that every endpoint answers as it does on Bun.
 */
import { createServer } from "node:http"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Layer } from "effect"
import { HttpServer } from "effect/http"
import type { ServerOptions } from "./Server.ts"

export const layer = (options: ServerOptions) =>
  Layer.merge(
    NodeHttpServer.layerServer(() => createServer(), {
      port: options.port,
      host: options.hostname ?? "0.0.0.0"
    }),
    HttpServer.layerServices
  )
