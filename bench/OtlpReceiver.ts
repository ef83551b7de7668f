/**
 * A tiny OTLP/HTTP trace receiver in the harness process (Bun.serve on 127.0.0.1, a free port): answers 200
 * to `POST /v1/traces` (OTLP JSON, what `@opentelemetry/exporter-trace-otlp-http` sends) and counts the
 * spans it was sent, by name. Point OTEL_EXPORTER_OTLP_ENDPOINT at `endpoint`.
 */

interface ExportRequest {
  readonly resourceSpans?: ReadonlyArray<{
    readonly scopeSpans?: ReadonlyArray<{ readonly spans?: ReadonlyArray<{ readonly name: string }> }>
  }>
}

export interface OtlpReceiver {
  readonly endpoint: string
  /** Spans received so far, by span name. */
  readonly spans: () => ReadonlyMap<string, number>
  readonly total: () => number
  readonly reset: () => void
  readonly requests: () => number
  readonly stop: () => void
}

export const start = (): OtlpReceiver => {
  let byName = new Map<string, number>()
  let requests = 0
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: async (request) => {
      if (request.method !== "POST" || new URL(request.url).pathname !== "/v1/traces") {
        return new Response("not found", { status: 404 })
      }
      requests++
      const body = (await request.json().catch(() => ({}))) as ExportRequest
      for (const resource of body.resourceSpans ?? []) {
        for (const scope of resource.scopeSpans ?? []) {
          for (const span of scope.spans ?? []) byName.set(span.name, (byName.get(span.name) ?? 0) + 1)
        }
      }
      return Response.json({})
    }
  })
  return {
    endpoint: `http://127.0.0.1:${server.port}`,
    spans: () => byName,
    total: () => [...byName.values()].reduce((a, b) => a + b, 0),
    reset: () => {
      byName = new Map()
      requests = 0
    },
    requests: () => requests,
    stop: () => server.stop(true)
  }
}
