/**
 * Effect's HttpApi answers a request it cannot decode with an empty 400, an unsupported content type with
 * plain text, and a body over the limit with a defect. This middleware turns each into the API's problem
 * shape, and caps the bytes a handler may read:
 *
 * - body is not JSON, or not UTF-8 -> 400 `MalformedJson`
 * - body, query or headers break the schema -> 422 `ValidationFailed`, every issue with its path
 * - the path's job id is not a UUID -> 404 `JobNotFound` (a malformed id names no job); any other path
 *   parameter that breaks its schema (a queue name) -> 422 `ValidationFailed`, as it would in a body
 * - `Content-Type` is not `application/json`, or a `Content-Encoding` (ContentEncoding.ts) -> 415
 *   `UnsupportedMediaType`
 * - body over `MAX_BODY_BYTES` -> 413 `PayloadTooLarge`; a `Content-Length` over it is refused before any
 *   byte is read, a chunked body as soon as the count passes it
 */
import * as NodeBuffer from "node:buffer"
import { ByteSize, Cause, Effect, identity, Layer } from "effect"
import {
  HttpIncomingMessage,
  HttpRouter,
  HttpServerError,
  HttpServerRequest,
  HttpServerRespondable,
  type HttpServerResponse
} from "effect/http"
import { HttpApiError } from "effect/http-api"
import { ApiConfig } from "../Config.ts"
import { issuesFrom, JobKinds } from "../domain/JobKind.ts"
import { RequestErrors } from "./Api.ts"
import * as ContentEncoding from "./ContentEncoding.ts"
import { newJobIdentifier, noKindMatches } from "./JobSchemas.ts"
import {
  JobNotFound,
  MalformedJson,
  PayloadTooLarge,
  type ProblemIssue,
  UnsupportedMediaType,
  ValidationFailed
} from "./Problems.ts"

const slots = { Params: "path", Query: "query", Headers: "headers", Payload: "body" } as const

/**
 * HttpApi decodes a body through a union of the endpoint's payload schemas, so a body that matches no job
 * kind is reported against that wrapper, by the identifier of ours ("Expected NewJob"); say what would match.
 */
const explainKinds = (names: ReadonlyArray<string>) => {
  const unmatched = `Expected ${newJobIdentifier}`
  return (issue: ProblemIssue): ProblemIssue =>
    issue.message === unmatched ? { ...issue, message: noKindMatches(names) } : issue
}

const issuesOf = (error: HttpApiError.HttpApiSchemaError): Array<ProblemIssue> => {
  const slot = slots[error.kind as keyof typeof slots] ?? error.kind.toLowerCase()
  return issuesFrom(error.cause.issue).map((issue) => ({
    path: [slot, ...issue.path],
    message: issue.message
  }))
}

const isMalformedJson = (error: HttpApiError.HttpApiSchemaError) =>
  error.kind === "Payload" &&
  error.cause.issue._tag === "InvalidValue" &&
  /valid JSON/.test(error.cause.issue.annotations?.message?.toString() ?? error.cause.message)

const render = (problem: HttpServerRespondable.Respondable) => HttpServerRespondable.toResponse(problem)

const fromSchemaError = (
  error: HttpApiError.HttpApiSchemaError,
  explain: (issue: ProblemIssue) => ProblemIssue
) =>
  Effect.gen(function* () {
    if (isMalformedJson(error)) return yield* render(new MalformedJson({ detail: error.cause.message }))
    if (error.kind === "Params") {
      const route = yield* HttpRouter.RouteContext
      const id = route.params.id
      if (id !== undefined) {
        return yield* render(new JobNotFound({ jobId: id, detail: `no job with id ${id}: not a UUID` }))
      }
    }
    return yield* render(ValidationFailed.of(issuesOf(error).map(explain)))
  })

const isProblem = (response: HttpServerResponse.HttpServerResponse) =>
  response.headers["content-type"]?.startsWith("application/problem+json") ?? false

const isBodyRead = (defect: unknown): defect is HttpServerError.HttpServerError =>
  HttpServerError.isHttpServerError(defect) && defect.reason._tag === "RequestParseError"

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true })
/** Node's check where the runtime has it (no string made), else a strict decode. */
const isUtf8: (bytes: Uint8Array) => boolean =
  typeof NodeBuffer.isUtf8 === "function"
    ? NodeBuffer.isUtf8
    : (bytes) => {
        try {
          fatalUtf8.decode(bytes)
          return true
        } catch {
          return false
        }
      }

/** Whether the endpoint reads the body as JSON: `application/json`, or no content type at all (HttpApi's default). */
const readAsJson = (contentType: string | undefined) => {
  const media = (contentType ?? "").split(";")[0]!.trim().toLowerCase()
  return media === "" || media === "application/json"
}

const notUtf8 = render(
  new MalformedJson({ detail: "the request body is not valid UTF-8 (JSON text must be)" })
)

/**
 * A JSON body must be UTF-8: its bytes are checked before the endpoint reads them as text, which would put
 * U+FFFD in place of what is not (a client's payload changed without a word, and two different bodies read as
 * one, replaying each other's idempotency key). The bytes are read once: the endpoint's text decodes them
 * from the same cached buffer. A body that cannot be read fails as the endpoint's own read would.
 */
const utf8Checked = <E, R>(
  request: HttpServerRequest.HttpServerRequest,
  httpEffect: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
) =>
  request.method === "GET" || request.method === "HEAD" || !readAsJson(request.headers["content-type"])
    ? httpEffect
    : Effect.flatMap(Effect.orDie(request.arrayBuffer), (body) =>
        isUtf8(new Uint8Array(body)) ? httpEffect : notUtf8
      )

export const layer = Layer.effect(
  RequestErrors,
  Effect.gen(function* () {
    const { maxBodyBytes } = yield* ApiConfig
    const explain = explainKinds((yield* JobKinds).names)
    const tooLarge = render(
      new PayloadTooLarge({ maxBytes: maxBodyBytes, detail: `the body exceeds ${maxBodyBytes} bytes` })
    )
    const unsupported = (contentType: string | undefined) =>
      render(
        new UnsupportedMediaType({
          accepted: ["application/json"],
          detail: `expected application/json, got ${contentType ?? "no content type"}`
        })
      )

    const answer = (
      httpEffect: Effect.Effect<HttpServerResponse.HttpServerResponse, unknown>,
      options: { readonly endpoint: { readonly payload: ReadonlyMap<string, unknown> } }
    ) =>
      Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
        const header = request.headers["content-length"]
        const declared = header === undefined ? undefined : Number(header)
        if (declared !== undefined && declared > maxBodyBytes) return tooLarge
        const encoded = ContentEncoding.refusal(request)
        if (encoded !== undefined) return encoded
        // an endpoint without a body ignores one sent all the same, as it did
        return (options.endpoint.payload.size > 0 ? utf8Checked(request, httpEffect) : httpEffect).pipe(
          // A declared length within the limit is read in one piece (the server's HTTP parser frames the
          // body by it); only a body without one (chunked) is read as a stream and counted as it comes.
          declared === undefined || !Number.isInteger(declared)
            ? Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(maxBodyBytes))
            : identity,
          Effect.catchCause(
            (
              cause
            ): Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, HttpRouter.RouteContext> => {
              const failure = Cause.findErrorOption(cause)
              if (failure._tag === "Some" && HttpApiError.HttpApiSchemaError.is(failure.value)) {
                return fromSchemaError(failure.value, explain)
              }
              const defect = Cause.findDefect(cause)
              if (defect._tag === "Success" && isBodyRead(defect.success)) {
                const parse = defect.success.reason as HttpServerError.RequestParseError
                return parse.reason === "BodyTooLarge"
                  ? tooLarge
                  : render(new MalformedJson({ detail: "the request body could not be read" }))
              }
              return Effect.failCause(cause)
            }
          ),
          // the only 415 HttpApi sends itself: a body whose content type the endpoint does not accept
          Effect.flatMap((response) =>
            response.status === 415 && !isProblem(response)
              ? unsupported(request.headers["content-type"])
              : Effect.succeed(response)
          )
        )
      })
    return answer as unknown as RequestErrors["Service"]
  })
)
