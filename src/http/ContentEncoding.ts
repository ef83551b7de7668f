/**
 * Request bodies are read as sent: the API decodes no content coding. A body sent with a `Content-Encoding`
 * other than `identity` (gzip, br, deflate, ...) is answered 415 `unsupported-media-type` naming the coding,
 * with `Accept-Encoding: identity` (RFC 9110, 15.5.16), instead of being read as JSON and answered 400.
 * Decompressing would put a second, decompressed size limit beside `MAX_BODY_BYTES` for bodies of a few
 * KiB; clients compress responses, not requests, when they compress at all.
 */
import { Effect } from "effect"
import { type HttpServerRequest, HttpServerRespondable, HttpServerResponse } from "effect/http"
import { UnsupportedMediaType } from "./Problems.ts"

const identity = (coding: string) => coding.trim().toLowerCase() === "identity"

/** A request that says it carries a body: a non-zero `Content-Length`, or any `Transfer-Encoding`. */
const hasBody = (headers: HttpServerRequest.HttpServerRequest["headers"]) =>
  headers["transfer-encoding"] !== undefined ||
  (headers["content-length"] !== undefined && headers["content-length"].trim() !== "0")

/** The 415 for a request body in a content coding the API does not decode; undefined when there is none. */
export const refusal = (
  request: HttpServerRequest.HttpServerRequest
): Effect.Effect<HttpServerResponse.HttpServerResponse> | undefined => {
  const coding = request.headers["content-encoding"]
  if (coding === undefined || coding.split(",").every(identity) || !hasBody(request.headers)) return undefined
  const named = coding.length > 64 ? `${coding.slice(0, 64)}...` : coding
  return HttpServerRespondable.toResponse(
    new UnsupportedMediaType({
      accepted: ["application/json"],
      detail: `Content-Encoding "${named}" is not supported: send the body uncompressed (identity)`
    })
  ).pipe(Effect.map(HttpServerResponse.setHeader("accept-encoding", "identity")))
}
