/**
 * Router middleware, outside every route: what the router and the handlers leave unanswered still leaves in
 * the API's problem shape.
 *
 * - no route for the path -> 404 `RouteNotFound` (`routeNotFound`, answered before the router is asked);
 *   the path exists with other methods -> 405 `MethodNotAllowed` with `Allow`
 * - a path the route table matches but the router refused: the router takes no parameter over 128
 *   characters (`Routes.routerConfig`), so `/jobs/<129+ characters>` arrives here; such an id names no job
 *   -> 404 `JobNotFound` (`FlowNotFound` under `/flows/`, `BulkOperationNotFound` under `/bulk-operations/`), the answer the operation documents for any other
 *   id that is not a UUID; a queue
 *   name that long, or one that is not valid percent-encoding (`%FF`), breaks the name rule -> 422
 *   `ValidationFailed`, as a shorter invalid name does
 * - a defect (a bug, or a database failure that is not transient) -> 500 `InternalError`, logged with its
 *   cause; never a bare stack trace
 * - every 503 carries `Retry-After`
 */
import { Cause, Effect } from "effect"
import { HttpServerError, HttpServerRespondable, HttpServerResponse } from "effect/http"
import { BulkOperationNotFound } from "./AdminApi.ts"
import { FlowNotFound } from "./FlowsApi.ts"
import {
  InternalError,
  JobNotFound,
  MethodNotAllowed,
  RouteNotFound,
  retryAfterSeconds,
  ValidationFailed
} from "./Problems.ts"
import type { Resolved } from "./RouteTable.ts"

const render = (problem: HttpServerRespondable.Respondable) => HttpServerRespondable.toResponse(problem)

/** The `parameter` segment of `pathname` under `template`, as it came. */
const segmentIn = (template: string, pathname: string, parameter: string) =>
  pathname.split("/")[template.split("/").indexOf(parameter)] ?? ""

/** A path segment percent-decoded; undefined when it is not valid percent-encoding (`%FF`, a lone `%`). */
const decoded = (segment: string) => {
  try {
    return decodeURIComponent(segment)
  } catch {
    return undefined
  }
}

/** The `:id` segment of `pathname` under `template` (percent-decoded when it decodes). */
const idIn = (template: string, pathname: string) => {
  const raw = segmentIn(template, pathname, ":id")
  return decoded(raw) ?? raw
}

const shorten = (text: string) => (text.length > 200 ? `${text.slice(0, 200)}...` : text)

const isRouteNotFound = (error: unknown) =>
  HttpServerError.isHttpServerError(error) && error.reason._tag === "RouteNotFound"

/** The 404 for a path no route has. */
export const routeNotFound = (request: Resolved) =>
  render(new RouteNotFound({ detail: `no route for ${request.method} ${shorten(request.pathname)}` }))

export const middleware =
  (request: Resolved) =>
  <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
    app.pipe(
      Effect.catchCause((cause) => {
        const failure = Cause.findErrorOption(cause)
        if (failure._tag === "Some" && isRouteNotFound(failure.value)) {
          const { match, method, pathname } = request
          if (match._tag === "Matched" && match.route.includes(":id")) {
            const id = idIn(match.route, pathname)
            if (match.route.startsWith("/bulk-operations/")) {
              return render(
                new BulkOperationNotFound({
                  operationId: id,
                  detail: `no bulk operation ${shorten(id)}: not a UUID`
                })
              )
            }
            if (match.route.startsWith("/flows/")) {
              return render(
                new FlowNotFound({ flowId: id, detail: `no flow with id ${shorten(id)}: not a UUID` })
              )
            }
            return render(new JobNotFound({ jobId: id, detail: `no job with id ${shorten(id)}: not a UUID` }))
          }
          if (match._tag === "Matched" && match.route.includes(":name")) {
            const what = match.route.startsWith("/schedules/") ? "schedule" : "queue"
            // the router refuses a segment it cannot percent-decode too
            const message =
              decoded(segmentIn(match.route, pathname, ":name")) !== undefined
                ? `a ${what} name has at most 128 characters`
                : `a ${what} name must be valid percent-encoded UTF-8 in the path`
            return render(
              new ValidationFailed({
                detail: `path.name: ${message}`,
                errors: [{ path: ["path", "name"], message }]
              })
            )
          }
          return match._tag === "WrongMethod"
            ? render(
                new MethodNotAllowed({
                  allowed: match.allowed,
                  detail: `${method} is not allowed on ${match.route}; use ${match.allowed.join(", ")}`
                })
              ).pipe(Effect.map(HttpServerResponse.setHeader("allow", match.allowed.join(", "))))
            : routeNotFound(request)
        }
        if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause)
        return Effect.logError("request failed", cause).pipe(
          Effect.andThen(render(new InternalError({ detail: "the failure was logged" })))
        )
      }),
      Effect.map((response) =>
        response.status === 503 && response.headers["retry-after"] === undefined
          ? HttpServerResponse.setHeader(response, "retry-after", String(retryAfterSeconds))
          : response
      )
    )
