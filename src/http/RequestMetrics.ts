/** Router middleware: counts each request and times it, labelled by route template, method and status. */
import { Effect, Metric } from "effect"
import { HttpServerRequest, type HttpServerResponse } from "effect/http"
import { requestSeconds, requests } from "../telemetry/ApiMetrics.ts"
import type { Match } from "./RouteTable.ts"

const methods = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
const routeLabel = (match: Match) => (match._tag === "Unknown" ? "unmatched" : match.route)

export const middleware =
  (matchRoute: (method: string, pathname: string) => Match) =>
  <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const started = performance.now()
      const record = (status: number) => {
        const pathname = new URL(request.url, "http://localhost").pathname
        const labels = {
          route: routeLabel(matchRoute(request.method, pathname)),
          method: methods.has(request.method) ? request.method : "other",
          status: String(status)
        }
        return Effect.andThen(
          Metric.update(Metric.withAttributes(requests, labels), 1),
          Metric.update(Metric.withAttributes(requestSeconds, labels), (performance.now() - started) / 1000)
        )
      }
      return app.pipe(
        Effect.tap((response) => record(response.status)),
        Effect.onError(() => record(500))
      )
    })
