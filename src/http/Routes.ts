/**
 * Everything the API serves, assembled: the contract's endpoints with their handlers, the OpenAPI document,
 * Swagger UI (its assets ship inside `effect`, no CDN), and the router-wide middleware (metrics, the
 * problem shape for unrouted requests and defects, bearer auth).
 */
import { Effect, Layer, type Types } from "effect"
import { HttpRouter, HttpServerRequest, type HttpServerResponse } from "effect/http"
import { HttpApiBuilder, HttpApiSwagger } from "effect/http-api"
import { ApiConfig } from "../Config.ts"
import type { JobKind } from "../domain/JobKind.ts"
import { makeAdminHandlers } from "./AdminHandlers.ts"
import { Authorization, makeApi } from "./Api.ts"
import * as BearerAuth from "./BearerAuth.ts"
import * as Dashboard from "./Dashboard.ts"
import * as ErrorResponses from "./ErrorResponses.ts"
import { feedLayer, makeEventsHandlers } from "./EventsHandlers.ts"
import { makeFlowsHandlers } from "./FlowsHandlers.ts"
import { makeJobsHandlers } from "./JobsHandlers.ts"
import * as PayloadDepth from "./PayloadDepth.ts"
import { makeQueuesHandlers } from "./QueuesHandlers.ts"
import * as RequestErrors from "./RequestErrors.ts"
import * as RequestMetrics from "./RequestMetrics.ts"
import * as RouteTable from "./RouteTable.ts"
import { makeSchedulesHandlers } from "./SchedulesHandlers.ts"
import { makeSystemHandlers } from "./SystemHandlers.ts"

export const openApiPath = "/api-docs/openapi.json"
/**
 * The router's limit on one path parameter: a queue name may have 128 characters (the router's default, 100,
 * turned `/queues/<101-128 characters>` into "no route"). Longer ones are answered by ErrorResponses.
 */
export const routerConfig = { maxParamLength: 128 }
export const docsPath = "/docs"

/** BearerAuth enforces tokens router-wide; the contract's Authorization only documents them. */
const AuthorizationDeclared = Layer.succeed(
  Authorization,
  Authorization.of({ bearer: (httpEffect) => httpEffect })
)

const routerMiddleware = (api: ReturnType<typeof makeApi>) =>
  HttpRouter.middleware(
    Effect.gen(function* () {
      const { tokens, readTokens, publicDocs } = yield* ApiConfig
      const open = new Set([...BearerAuth.probePaths, ...(publicDocs ? [docsPath, openApiPath] : [])])
      if (tokens.length === 0 && readTokens.length === 0)
        yield* Effect.logWarning("API_TOKENS is not set: the API is open to anyone")
      else
        yield* Effect.logInfo(
          `bearer auth on: ${tokens.length} token(s), ${readTokens.length} read-only; open without one: ${[...open].join(", ")}`
        )
      const matchRoute = RouteTable.make([
        ...RouteTable.fromApi(api),
        { method: "GET", path: openApiPath },
        { method: "GET", path: docsPath },
        ...Dashboard.routes
      ])
      const metrics = RequestMetrics.middleware(yield* Effect.context<never>())
      const auth = BearerAuth.middleware(tokens, open, readTokens, [Dashboard.path])
      // ErrorResponses answers every failure; only an interruption passes through. A path the route table
      // does not know is answered 404 without asking the router, which would match more (RouteTable).
      return (app: Effect.Effect<HttpServerResponse.HttpServerResponse, Types.unhandled>) =>
        Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
          const pathname = new URL(request.url, "http://localhost").pathname
          const resolved = { method: request.method, pathname, match: matchRoute(request.method, pathname) }
          const routed = resolved.match._tag === "Unknown" ? ErrorResponses.routeNotFound(resolved) : app
          return metrics(resolved)(ErrorResponses.middleware(resolved)(auth(routed)))
        }) as Effect.Effect<
          HttpServerResponse.HttpServerResponse,
          Types.unhandled,
          HttpServerRequest.HttpServerRequest
        >
    }),
    { global: true }
  )

/** The API's routes for the given kinds; needs `Queue`, `JobKinds`, `PgClient`, `Prometheus`, `ApiConfig`. */
export const layer = (kinds: ReadonlyArray<JobKind>) => {
  const api = makeApi(kinds)
  return Layer.mergeAll(
    HttpApiBuilder.layer(api, { openapiPath: openApiPath }).pipe(
      Layer.provide([
        makeJobsHandlers(api),
        makeQueuesHandlers(api),
        makeSchedulesHandlers(api),
        makeFlowsHandlers(api),
        makeSystemHandlers(api),
        makeAdminHandlers(api),
        makeEventsHandlers(api)
      ]),
      Layer.provide(feedLayer),
      Layer.provide([RequestErrors.layer, PayloadDepth.layer, AuthorizationDeclared])
    ),
    HttpApiSwagger.layer(api, { path: docsPath }),
    Dashboard.layer,
    routerMiddleware(api)
  )
}
