/**
 * Hostile HTTP requests for the API, generated with fast-check from its OpenAPI document: every operation,
 * bodies built from the documented schemas and then corrupted (wrong types, huge strings and arrays, deep
 * nesting, SQL-looking and path-traversal strings, lone surrogates, NUL), raw bodies with invalid UTF-8,
 * odd headers and absurd query parameters. Also a small checker of a JSON value against a documented
 * schema, for the answers.
 */
import fc from "fast-check"

type Schema = Record<string, any>
export type Spec = {
  paths: Record<string, Record<string, any>>
  components: { schemas: Record<string, Schema> }
}

export const sqlLooking = [
  "'; DROP TABLE fuzz_canary; --",
  "1' OR '1'='1",
  '"; DELETE FROM jobs; --',
  "$$; TRUNCATE jobs; $$",
  "') ; SELECT pg_sleep(10); --",
  "E'\\\\x00'",
  "%' AND 1=1 --",
  "Robert'); DROP TABLE jobs;--",
  "1; COPY jobs TO '/tmp/x'",
  "$" + "{jndi:ldap://127.0.0.1/a}",
  "{{7*7}}"
]

export const traversal = [
  "../../../../etc/passwd",
  "..%2f..%2f..%2fetc%2fpasswd",
  "%2e%2e%2f%2e%2e%2f",
  "..\\..\\windows\\win.ini",
  "/%00",
  "%00",
  "....//....//",
  "%252e%252e%252f",
  "\u2025/\u2025/",
  "batch/../../jobs"
]

const huge = (unit: string, max: number) => fc.integer({ min: 1_000, max }).map((n) => unit.repeat(n))

/** Strings meant to hurt: SQL, traversal, control and odd Unicode, very long ones. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...sqlLooking) },
  { weight: 2, arbitrary: fc.constantFrom(...traversal) },
  { weight: 3, arbitrary: fc.string({ maxLength: 64 }) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 32 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom("\u0000", "a\u0000b", "\ud800", "\udfff", "x\ud83d", "\uFEFF", "\u202E")
  },
  { weight: 1, arbitrary: fc.constantFrom("", " ", "null", "undefined", "NaN", "-0", "1e999", "0x10") },
  { weight: 1, arbitrary: huge("A", 300_000) },
  { weight: 1, arbitrary: huge("\u00e9\u{1F600}", 20_000) }
)

const nested = (depth: number, leaf: unknown): unknown => {
  let value = leaf
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? { a: value } : [value]
  return value
}

/** Any JSON value, biased to the ones that break parsers and validators. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: hostileString },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      0,
      -1,
      -0,
      1.5,
      2 ** 53,
      -(2 ** 63),
      1e308,
      Number.MAX_VALUE,
      Number.MIN_VALUE,
      true,
      false,
      null
    )
  },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.integer({ min: 2, max: 5_000 }).map((depth) => nested(depth, "deep")) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1_000, max: 20_000 }).map((n) => Array.from({ length: n }, (_, i) => i))
  },
  { weight: 1, arbitrary: fc.json({ maxDepth: 3 }).map((text) => JSON.parse(text)) },
  { weight: 1, arbitrary: fc.dictionary(hostileString, fc.string(), { maxKeys: 5 }) }
)

const resolve = (spec: Spec, schema: Schema): Schema =>
  typeof schema.$ref === "string"
    ? resolve(spec, spec.components.schemas[schema.$ref.split("/").at(-1)!]!)
    : schema

/** Values that follow `schema`, except that any node may be replaced by a hostile value. */
export const fromSchema = (
  spec: Spec,
  schema: Schema,
  corruption = 0.05,
  depth = 0,
  name = ""
): fc.Arbitrary<unknown> => {
  const s = resolve(spec, schema)
  const valid = ((): fc.Arbitrary<unknown> => {
    const members = s.oneOf ?? s.anyOf
    if (Array.isArray(members))
      return fc.oneof(...members.map((m: Schema) => fromSchema(spec, m, corruption, depth)))
    if (Array.isArray(s.enum)) return fc.constantFrom(...s.enum)
    switch (s.type) {
      case "object": {
        const properties = Object.entries<Schema>(s.properties ?? {})
        const required = new Set<string>(s.required ?? [])
        const record: Record<string, fc.Arbitrary<unknown>> = {}
        for (const [key, value] of properties)
          record[key] = fromSchema(spec, value, corruption, depth + 1, key)
        return fc
          .record(record, { requiredKeys: properties.map(([k]) => k).filter((k) => required.has(k)) })
          .map((object: Record<string, unknown>) => {
            // the one rule the document cannot state: runAt and delayMs exclude each other
            if ("runAt" in object && "delayMs" in object) delete object.delayMs
            return object
          })
      }
      case "array":
        return fc.array(fromSchema(spec, s.items ?? {}, corruption, depth + 1), {
          minLength: Math.min(s.minItems ?? 0, 3),
          maxLength: Math.min(s.maxItems ?? 5, 5)
        })
      case "integer":
        return fc.integer({
          min: s.minimum ?? -1_000_000,
          max: Math.min(s.maximum ?? 1_000_000, 2 ** 31 - 1)
        })
      case "number":
        return fc.double({ noNaN: true, noDefaultInfinity: true })
      case "boolean":
        return fc.boolean()
      case "string":
        if (name === "runAt" || s.format === "date-time") {
          return fc
            .date({ min: new Date("2000-01-01"), max: new Date("2100-01-01"), noInvalidDate: true })
            .map((d) => d.toISOString())
        }
        return s.description?.startsWith("Queue name")
          ? fc.stringMatching(/^[A-Za-z0-9_.:-]{0,10}[A-Za-z0-9_:-][A-Za-z0-9_.:-]{0,9}$/)
          : fc.oneof(
              {
                weight: 4,
                arbitrary: fc.string({
                  minLength: s.minLength ?? 0,
                  maxLength: Math.min(s.maxLength ?? 40, 40)
                })
              },
              { weight: 2, arbitrary: fc.constantFrom(...sqlLooking) },
              { weight: 1, arbitrary: fc.constantFrom("\ud800", "a\udfffb", "\u{1F600}", "\u00e9", "\u0000") }
            )
      default:
        return hostileValue
    }
  })()
  return fc.oneof(
    { weight: Math.round(1 / corruption), arbitrary: valid },
    { weight: 1, arbitrary: hostileValue }
  )
}

/** Where a JSON value breaks `schema`: undefined when it conforms. Handles what the document uses. */
export const violation = (spec: Spec, schema: Schema, value: unknown, at = "$"): string | undefined => {
  const s = resolve(spec, schema)
  const members = s.oneOf ?? s.anyOf
  if (Array.isArray(members)) {
    return members.some((m: Schema) => violation(spec, m, value, at) === undefined)
      ? undefined
      : `${at}: matches none of ${members.length} alternatives`
  }
  if (Array.isArray(s.enum) && !s.enum.includes(value)) return `${at}: ${JSON.stringify(value)} not in enum`
  const type = s.type as string | undefined
  if (type === "object") {
    if (value === null || typeof value !== "object" || Array.isArray(value)) return `${at}: not an object`
    const object = value as Record<string, unknown>
    for (const key of s.required ?? []) if (!(key in object)) return `${at}.${key}: required`
    for (const [key, item] of Object.entries(object)) {
      const property = s.properties?.[key]
      if (property === undefined) {
        if (s.additionalProperties === false) return `${at}.${key}: not allowed`
        continue
      }
      const broken = violation(spec, property, item, `${at}.${key}`)
      if (broken !== undefined) return broken
    }
    return undefined
  }
  if (type === "array") {
    if (!Array.isArray(value)) return `${at}: not an array`
    for (const [i, item] of value.entries()) {
      const broken = violation(spec, s.items ?? {}, item, `${at}[${i}]`)
      if (broken !== undefined) return broken
    }
    return undefined
  }
  if (type === "string" && typeof value !== "string") return `${at}: not a string`
  if ((type === "number" || type === "integer") && typeof value !== "number") return `${at}: not a number`
  if (type === "boolean" && typeof value !== "boolean") return `${at}: not a boolean`
  if (type === "null" && value !== null) return `${at}: not null`
  return undefined
}

export interface Operation {
  readonly method: string
  readonly path: string
  readonly operation: Record<string, any>
}

export const operationsOf = (spec: Spec): ReadonlyArray<Operation> =>
  Object.entries(spec.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, operation]) => ({ method: method.toUpperCase(), path, operation }))
  )

export interface FuzzRequest {
  readonly op: Operation
  readonly method: string
  readonly path: string
  readonly headers: Record<string, string>
  /** What was sent, when it was a JSON value (to compare with what the database stored). */
  readonly json: unknown
  readonly body: string | Uint8Array | undefined
}

/** Header values a client can actually send: Latin-1, no control characters. */
const headerSafe = (value: string) => value.replace(/[^\x20-\x7e\xa0-\xff]/g, "?").slice(0, 4_000)

const contentTypes = [
  "application/json",
  "application/json; charset=utf-8",
  "APPLICATION/JSON",
  "application/json; charset=latin1",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/problem+json",
  "application/json, text/plain",
  ""
]

const queryKeys = ["status", "kind", "queue", "cursor", "limit", "limit", "offset", "__proto__", "status[]"]
const queryValue = fc.oneof(
  hostileString,
  fc.constantFrom(
    "-1",
    "0",
    "1",
    "500",
    "501",
    "1e309",
    "NaN",
    "Infinity",
    "99999999999999999999",
    "0x1f",
    "1.5"
  ),
  fc.constantFrom("queued", "running", "succeeded", "retrying", "failed_permanent", "cancelled", "noop"),
  fc.uuid().map((u) => u)
)

/** Raw bytes: invalid UTF-8 alone or inside otherwise valid JSON, truncated JSON, garbage. */
const rawBody = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 256 }),
  fc
    .constantFrom(
      [0xff],
      [0xc3, 0x28],
      [0xe2, 0x82],
      [0xf0, 0x28, 0x8c, 0xbc],
      [0xed, 0xa0, 0x80],
      [0xc0, 0xaf]
    )
    .map((bad) => {
      const head = new TextEncoder().encode('{"kind":"cpu_hash","payload":{"seed":"')
      const tail = new TextEncoder().encode('","rounds":1}}')
      return new Uint8Array([...head, ...bad, ...tail])
    }),
  fc.constantFrom(
    '{"kind":"noop","payload":',
    "{",
    "[",
    '"',
    "nul",
    "{}}",
    '{"kind":"noop","payload":{}}x',
    "\uFEFF{}"
  )
)

/** Lone surrogates replaced, so the string can be percent-encoded. */
const wellFormed = (text: string) =>
  text.replace(/[\ud800-\udfff]/g, (c, i: number, all: string) => {
    const code = c.charCodeAt(0)
    const next = all.charCodeAt(i + 1)
    const previous = all.charCodeAt(i - 1)
    const paired = code < 0xdc00 ? next >= 0xdc00 && next <= 0xdfff : previous >= 0xd800 && previous < 0xdc00
    return paired ? c : "\ufffd"
  })

/** `arbitrary` one time in `n`, null otherwise. */
const sometimes = <A>(arbitrary: fc.Arbitrary<A>, n: number) =>
  fc.oneof({ weight: n - 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary })

export const requestFor = (spec: Spec, ops: ReadonlyArray<Operation>): fc.Arbitrary<FuzzRequest> =>
  fc.constantFrom(...ops).chain((op) => {
    const schema = op.operation.requestBody?.content?.["application/json"]?.schema
    const json: fc.Arbitrary<unknown> =
      schema === undefined ? fc.oneof(fc.constant(undefined), hostileValue) : fromSchema(spec, schema)
    return fc
      .record({
        method: fc.oneof(
          { weight: 12, arbitrary: fc.constant(op.method) },
          {
            weight: 1,
            arbitrary: fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")
          }
        ),
        id: fc.oneof(
          { weight: 3, arbitrary: fc.uuid() },
          {
            weight: 2,
            arbitrary: hostileString.map((s) => encodeURIComponent(wellFormed(s)).slice(0, 10_000))
          },
          { weight: 1, arbitrary: fc.constantFrom(...traversal) }
        ),
        query: fc.array(
          fc.tuple(fc.oneof(fc.constantFrom(...queryKeys), fc.string({ maxLength: 8 })), queryValue),
          {
            maxLength: op.method === "GET" ? 5 : 1
          }
        ),
        json,
        raw: sometimes(rawBody, 8),
        contentType: fc.oneof(
          { weight: 8, arbitrary: fc.constant("application/json") },
          fc.constantFrom(...contentTypes)
        ),
        idempotencyKey: sometimes(fc.oneof(hostileString, fc.constantFrom(...sqlLooking)), 4),
        extra: fc.dictionary(
          fc.constantFrom(
            "accept",
            "accept-encoding",
            "x-forwarded-for",
            "origin",
            "range",
            "expect",
            "cookie"
          ),
          hostileString,
          { maxKeys: 2 }
        ),
        batchSize: sometimes(fc.constantFrom(0, 1001, 2000), 20)
      })
      .map(({ method, id, query, json: value, raw, contentType, idempotencyKey, extra, batchSize }) => {
        const search = new URLSearchParams()
        for (const [k, v] of query) search.append(k, v.slice(0, 20_000))
        const path = `${op.path.replace("{id}", id)}${query.length > 0 ? `?${search}` : ""}`
        const headers: Record<string, string> = {}
        for (const [k, v] of Object.entries(extra)) headers[k] = headerSafe(v)
        if (contentType !== "") headers["content-type"] = contentType
        if (idempotencyKey !== null) headers["idempotency-key"] = headerSafe(idempotencyKey)
        let sent = value
        if (batchSize !== null && op.path === "/jobs/batch") {
          sent = { jobs: Array.from({ length: batchSize }, () => ({ kind: "noop", payload: {} })) }
        }
        const hasBody = method !== "GET" && method !== "HEAD"
        const body = !hasBody
          ? undefined
          : raw !== null
            ? raw
            : sent === undefined
              ? undefined
              : JSON.stringify(sent)
        const request: FuzzRequest = {
          op,
          method,
          path,
          headers,
          json: hasBody && raw === null ? sent : undefined,
          body
        }
        // counterexamples print as the request, not the whole operation object
        return Object.assign(request, {
          [fc.toStringMethod]: () =>
            `${method} ${path.slice(0, 300)} ${JSON.stringify(headers).slice(0, 300)} ${
              typeof body === "string"
                ? body.slice(0, 500)
                : body === undefined
                  ? ""
                  : `bytes[${body.length}]`
            }`
        })
      })
  })
