/**
 * A tiny OTLP/HTTP trace receiver in the harness process (Bun.serve on 127.0.0.1, a free port): answers 200
 * to `POST /v1/traces` (OTLP JSON, what `@opentelemetry/exporter-trace-otlp-http` sends) and counts the
 * spans it was sent, by name. Point OTEL_EXPORTER_OTLP_ENDPOINT at `endpoint`.
 *
 * It stands in for a collector on another machine, so it must take as little as it can of the 2 cores
 * the measured processes share: it counts spans by scanning the body's text instead of parsing it
 * (`JSON.parse` of an export took about 4 µs a span, as much as making the span in the worker).
 */

const spanIdField = Buffer.from('"spanId":"')
const nameField = Buffer.from('"name":"')
const quote = '"'.charCodeAt(0)

/** Spans in an OTLP JSON export by name: every span object has a `spanId` followed by its `name`. */
export const countSpans = (body: Buffer, into: Map<string, number>) => {
  let at = body.indexOf(spanIdField)
  while (at !== -1) {
    const nameAt = body.indexOf(nameField, at)
    if (nameAt === -1) break
    const start = nameAt + nameField.length
    const end = body.indexOf(quote, start)
    const name = body.toString("utf8", start, end)
    into.set(name, (into.get(name) ?? 0) + 1)
    at = body.indexOf(spanIdField, end)
  }
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
      countSpans(Buffer.from(await request.arrayBuffer()), byName)
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
