/**
 * Router middleware: counts each request and times it, labelled by route template, method and status; a
 * request the client abandoned before its answer is status 499, as nginx logs it.
 */
import { Cause, type Context, Effect } from "effect"
import { HttpServerError, type HttpServerResponse } from "effect/http"
import { requestSeconds, requestSecondsBoundaries, requests } from "../telemetry/ApiMetrics.ts"
import * as Series from "../telemetry/Series.ts"
import type { Match, Resolved } from "./RouteTable.ts"

const clientAborted = (cause: Cause.Cause<unknown>) =>
  cause.reasons.some(
    (reason) => reason._tag === "Interrupt" && reason.annotations.has(HttpServerError.ClientAbort.key)
  )

const methods = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
const routeLabel = (match: Match) => (match._tag === "Unknown" ? "unmatched" : match.route)

/** The two series of one (route, method, status), registered the first time it is answered. */
const seriesFor = (context: Context.Context<never>) => {
  const found = new Map<string, { count: Series.CounterSeries; seconds: Series.HistogramSeries }>()
  return (labels: { readonly route: string; readonly method: string; readonly status: string }) => {
    const key = `${labels.method} ${labels.route} ${labels.status}`
    let series = found.get(key)
    if (series === undefined) {
      series = {
        count: Series.counter(context, requests, labels),
        seconds: Series.histogram(context, requestSeconds, requestSecondsBoundaries, labels)
      }
      found.set(key, series)
    }
    return series
  }
}

export const middleware = (context: Context.Context<never>) => {
  const series = seriesFor(context)
  return (request: Resolved) =>
    <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
      Effect.suspend(() => {
        const started = performance.now()
        const record = (status: number) =>
          Effect.sync(() => {
            const { count, seconds } = series({
              route: routeLabel(request.match),
              method: methods.has(request.method) ? request.method : "other",
              status: String(status)
            })
            count.add(1)
            seconds.observe((performance.now() - started) / 1000)
          })
        return app.pipe(
          Effect.tap((response) => record(response.status)),
          // interrupted because the client went away before its answer: 499, as Effect's server answers it
          // (and nginx logs it), not a server error; interrupted by the server (shutting down): 503
          Effect.onError((cause) =>
            record(Cause.hasInterruptsOnly(cause) ? (clientAborted(cause) ? 499 : 503) : 500)
          )
        )
      })
}
