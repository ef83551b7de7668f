/**
 * Optional bearer tokens (`API_TOKENS`). When any are configured, every request but `/health` must carry
 * `Authorization: Bearer <one of them>`, or it is answered 401 before it is routed or its body is read;
 * the routes that serve the API's description (Swagger UI, the OpenAPI document) may be left open too.
 * Tokens are compared as SHA-256 digests (Web Crypto: no Node API, so the API runs on edge hosts too) in
 * constant time, against every configured token, so the time taken says nothing about how much of a token
 * matched, nor which one.
 */
import { Effect, Redacted } from "effect"
import { HttpServerRequest, HttpServerRespondable, HttpServerResponse } from "effect/http"
import { Forbidden, Unauthorized } from "./Problems.ts"

/** Paths always answered without a token: what load balancers and orchestrators probe. */
export const probePaths: ReadonlyArray<string> = ["/health"]

const digest = async (value: string) =>
  new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(value)))

/** Whether two byte strings are equal, in a time that depends on their lengths only. */
export const constantTimeEqual = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  let difference = 0
  for (let i = 0; i < a.length; i++) difference |= a[i]! ^ b[i]!
  return difference === 0
}

const bearer = (header: string | undefined): string | undefined => {
  const match = header === undefined ? null : /^Bearer +(\S+) *$/i.exec(header)
  return match?.[1]
}

/**
 * Whether an `Authorization` header carries one of the tokens. Undefined `tokens` never match. `compare`
 * is `constantTimeEqual`; a test passes its own to see what is compared.
 */
export const makeVerifier = (
  tokens: ReadonlyArray<Redacted.Redacted<string>>,
  compare: (a: Uint8Array, b: Uint8Array) => boolean = constantTimeEqual
) => {
  let digests: Promise<Array<Uint8Array>> | undefined
  return async (authorization: string | undefined): Promise<boolean> => {
    const presented = bearer(authorization)
    if (presented === undefined) return false
    digests ??= Promise.all(tokens.map((token) => digest(Redacted.value(token))))
    const candidate = await digest(presented)
    let matched = false
    for (const known of await digests) matched = compare(known, candidate) || matched
    return matched
  }
}

const challenge = HttpServerRespondable.toResponse(
  new Unauthorized({ detail: "send Authorization: Bearer <token>" })
).pipe(Effect.map(HttpServerResponse.setHeader("www-authenticate", 'Bearer realm="jobq"')))

const forbidden = HttpServerRespondable.toResponse(
  new Forbidden({ detail: "a read-only token (API_READ_TOKENS) may only GET; send a token from API_TOKENS" })
)

/** Methods a read-only token may use: they change nothing. */
const readMethods: ReadonlySet<string> = new Set(["GET", "HEAD"])

/**
 * Router middleware: the identity when no tokens are configured; `open` paths (and every path under an
 * `openPrefixes` entry: the dashboard's shell) never need one. A read-only token (`readTokens`) passes
 * GET and HEAD; any other method is answered 403, whatever route it names.
 */
export const middleware = (
  tokens: ReadonlyArray<Redacted.Redacted<string>>,
  open: ReadonlySet<string>,
  readTokens: ReadonlyArray<Redacted.Redacted<string>> = [],
  openPrefixes: ReadonlyArray<string> = []
) => {
  if (tokens.length === 0 && readTokens.length === 0)
    return <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) => app
  const verify = makeVerifier(tokens)
  const verifyRead = makeVerifier(readTokens)
  return <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const pathname = new URL(request.url, "http://localhost").pathname
      if (
        open.has(pathname) ||
        openPrefixes.some((prefix) => pathname === prefix || pathname.startsWith(`${prefix}/`))
      )
        return app
      const authorization = request.headers.authorization
      return Effect.flatMap(
        Effect.promise(() => Promise.all([verify(authorization), verifyRead(authorization)])),
        ([full, read]) =>
          full ? app : read ? (readMethods.has(request.method) ? app : forbidden) : challenge
      )
    })
}
