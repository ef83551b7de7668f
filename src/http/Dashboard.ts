/**
 * Serves the dashboard (`ui/dist`: its HTML shell, one JavaScript bundle, one stylesheet) under `/ui`. The
 * shell loads without a token (it holds no data; every read it makes goes through the API with the
 * token the user gives it). Its URLs are relative, and it routes by the URL's fragment, so it works under
 * any proxy prefix without being told it. The files are read once, when the layer is built, and served
 * gzipped to a client that accepts it. `config.json` is the shell's settings (DASHBOARD_TRACE_URL), no data.
 */
import { readFileSync } from "node:fs"
import { gzipSync } from "node:zlib"
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { ApiConfig } from "../Config.ts"

export const path = "/ui"

const files: Record<string, string> = {
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "app.css": "text/css; charset=utf-8"
}

export const routes = [
  { method: "GET", path },
  { method: "GET", path: `${path}/:file` }
]

const distDirectory = new URL("../../ui/dist/", import.meta.url)

interface Asset {
  readonly contentType: string
  readonly plain: Uint8Array
  readonly gzipped: Uint8Array
}

const load = (settings: { readonly traceUrl: string | null }): Map<string, Asset> => {
  const assets = new Map<string, Asset>()
  const config = new TextEncoder().encode(JSON.stringify(settings))
  assets.set("config.json", {
    contentType: "application/json",
    plain: config,
    gzipped: gzipSync(config, { level: 9 })
  })
  for (const [name, contentType] of Object.entries(files)) {
    let plain: Uint8Array
    try {
      plain = readFileSync(new URL(name, distDirectory))
    } catch {
      continue // not built: that file answers 404, the API itself is unaffected
    }
    assets.set(name, { contentType, plain, gzipped: gzipSync(plain, { level: 9 }) })
  }
  return assets
}

const securityHeaders = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer"
}

const notFound = HttpServerResponse.text("no such dashboard file", { status: 404 })

export const layer = Layer.unwrap(
  Effect.gen(function* () {
    const config = yield* Effect.serviceOption(ApiConfig)
    const assets = load({ traceUrl: config._tag === "Some" ? config.value.dashboardTraceUrl : null })
    const serve = (name: string) =>
      Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
        const asset = assets.get(name)
        if (asset === undefined) return notFound
        const gzip = /\bgzip\b/.test(request.headers["accept-encoding"] ?? "")
        return HttpServerResponse.uint8Array(gzip ? asset.gzipped : asset.plain, {
          contentType: asset.contentType,
          headers: {
            ...securityHeaders,
            "cache-control": "no-cache",
            vary: "accept-encoding",
            ...(gzip ? { "content-encoding": "gzip" } : {})
          }
        })
      })
    return HttpRouter.addAll([
      // `/ui` -> `ui/`: relative to the path it was asked for, so a proxy prefix is kept
      HttpRouter.route(
        "GET",
        path,
        Effect.map(HttpServerRequest.HttpServerRequest, (request) =>
          new URL(request.url, "http://localhost").pathname.endsWith("/")
            ? undefined
            : HttpServerResponse.empty({ status: 302, headers: { location: "ui/" } })
        ).pipe(
          Effect.flatMap((redirect) =>
            redirect === undefined ? serve("index.html") : Effect.succeed(redirect)
          )
        )
      ),
      HttpRouter.route(
        "GET",
        `${path}/:file`,
        Effect.flatMap(HttpRouter.params, (params) => serve(params.file ?? ""))
      )
    ])
  })
)
