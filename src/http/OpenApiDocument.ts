/**
 * What the OpenAPI document says beyond what Effect derives from the schemas: that `NewJob` is discriminated
 * on `kind`, a valid example request per kind (Swagger UI's "Try it out" sends it as it is), the headers
 * that come with some statuses, component names without Effect's `Encoded` suffix, and no integer bounds
 * that only say "a safe integer". `npx @redocly/cli lint` passes on the result (test/api/openapi.test.ts).
 */
import { Schema, SchemaAST } from "effect"
import { enqueuePayload, type JobKind } from "../domain/JobKind.ts"
import { defaultWaitSeconds, newJobIdentifier, waitPattern, waitSyntaxDescription } from "./JobSchemas.ts"
import { retryAfterSeconds } from "./Problems.ts"

type Spec = Record<string, any>

/** `NewJob` as OpenAPI's discriminated union: members are told apart by their `kind` constant. */
const discriminateNewJob = (spec: Spec) => {
  const schemas = spec.components?.schemas ?? {}
  const union = schemas[newJobIdentifier]
  if (union?.anyOf === undefined) return
  const mapping: Record<string, string> = {}
  for (const member of union.anyOf as Array<{ $ref: string }>) {
    const kind = schemas[member.$ref.split("/").at(-1)!]?.properties?.kind?.enum?.[0]
    if (typeof kind === "string") mapping[kind] = member.$ref
  }
  const { anyOf, ...rest } = union
  schemas[newJobIdentifier] = { ...rest, oneOf: anyOf, discriminator: { propertyName: "kind", mapping } }
}

/** The first `examples` entry of a kind's payload schema, encoded as a client sends it; undefined if none. */
const examplePayload = (kind: JobKind): unknown => {
  const schema = enqueuePayload(kind.payload)
  const examples = SchemaAST.resolveAt<ReadonlyArray<unknown>>("examples")(schema.ast)
  if (examples === undefined || examples.length === 0) return undefined
  return Schema.encodeUnknownSync(schema)(examples[0])
}

/**
 * Each kind's `NewJob_<kind>` schema titled with the kind's name (Swagger UI shows an untitled member of a
 * union as #0, #1...) and described by the kind's description. And a valid request body per kind whose
 * payload schema has an example (the demo kinds do; a `JOBS_MODULE` kind gets one by annotating its
 * payload schema with `examples`): on its schema, and as the named examples of `POST /jobs` (one per kind)
 * and `POST /jobs/batch` (one job of each kind).
 */
const describeKinds = (spec: Spec, kinds: ReadonlyArray<JobKind>) => {
  const schemas = spec.components?.schemas ?? {}
  const mapping: Record<string, string> = schemas[newJobIdentifier]?.discriminator?.mapping ?? {}
  const jobs: Array<{ readonly kind: string; readonly payload: unknown }> = []
  for (const kind of kinds) {
    const component = mapping[kind.name]?.split("/").at(-1)
    if (component === undefined) continue
    const schema = schemas[component]
    schemas[component] = {
      title: kind.name,
      ...(kind.description === undefined ? {} : { description: kind.description }),
      ...schema
    }
    const payload = examplePayload(kind)
    if (payload === undefined) continue
    const job = { kind: kind.name, payload }
    schemas[component].examples = [job]
    jobs.push(job)
  }
  if (jobs.length === 0) return
  for (const item of Object.values<any>(spec.paths ?? {})) {
    for (const operation of Object.values<any>(item)) {
      const body = operation?.requestBody?.content?.["application/json"]
      const ref: string | undefined = body?.schema?.$ref
      if (ref === `#/components/schemas/${newJobIdentifier}`) {
        body.examples = Object.fromEntries(
          jobs.map((job) => [job.kind, { summary: `A ${job.kind} job`, value: job }])
        )
      } else if (ref === "#/components/schemas/NewJobBatch") {
        body.examples = { oneOfEachKind: { summary: "One job of each kind", value: { jobs } } }
      }
    }
  }
}

/** The headers that come with some statuses. */
const addResponseHeaders = (spec: Spec) => {
  for (const item of Object.values<any>(spec.paths ?? {})) {
    for (const operation of Object.values<any>(item)) {
      const unavailable = operation?.responses?.["503"]
      if (unavailable !== undefined) {
        unavailable.headers = {
          "Retry-After": {
            description: `Seconds to wait before retrying (${retryAfterSeconds})`,
            schema: { type: "string" }
          }
        }
      }
      const unauthorized = operation?.responses?.["401"]
      if (unauthorized !== undefined) {
        unauthorized.headers = {
          "WWW-Authenticate": { description: "Bearer", schema: { type: "string" } }
        }
      }
    }
  }
}

/** Every value in `node` (objects and arrays, to any depth: the document is ours, not a client's). */
const visit = (node: unknown, onObject: (object: Record<string, any>) => void) => {
  const pending = [node]
  while (pending.length > 0) {
    const current = pending.pop()
    if (current === null || typeof current !== "object") continue
    if (!Array.isArray(current)) onObject(current as Record<string, any>)
    pending.push(...Object.values(current))
  }
}

/**
 * Effect names a component after the encoded side of a class schema (`UnauthorizedEncoded`); the document
 * has no other side, so the suffix only adds noise. Renamed where the plain name is free, references too.
 */
const dropEncodedSuffix = (spec: Spec) => {
  const schemas: Record<string, unknown> = spec.components?.schemas ?? {}
  const renamed = new Map<string, string>()
  for (const name of Object.keys(schemas)) {
    const plain = name.replace(/Encoded$/, "")
    if (plain !== name && plain.length > 0 && !(plain in schemas)) renamed.set(name, plain)
  }
  if (renamed.size === 0) return
  spec.components.schemas = Object.fromEntries(
    Object.entries(schemas).map(([name, schema]) => [renamed.get(name) ?? name, schema])
  )
  visit(spec, (object) => {
    const ref = object.$ref
    if (typeof ref !== "string" || !ref.startsWith("#/components/schemas/")) return
    const to = renamed.get(ref.slice("#/components/schemas/".length))
    if (to !== undefined) object.$ref = `#/components/schemas/${to}`
  })
}

/** `minimum`/`maximum` of ±(2^53 - 1) say only "a safe integer", which every JSON integer here is. */
const dropSafeIntegerBounds = (spec: Spec) =>
  visit(spec, (object) => {
    if (object.type !== "integer") return
    if (object.minimum === Number.MIN_SAFE_INTEGER) delete object.minimum
    if (object.maximum === Number.MAX_SAFE_INTEGER) delete object.maximum
  })

/**
 * The wait parameters (`POST /jobs?wait=`, `GET /jobs/{id}/wait?timeout=`) with their syntax and bounds,
 * which Effect leaves out of query parameters, and what the wait's 200 and 202 mean.
 */
const describeWaits = (spec: Spec) => {
  const described = (name: string, description: string) => (parameter: any) =>
    parameter?.in === "query" && parameter.name === name
      ? {
          ...parameter,
          description,
          schema: { ...parameter.schema, pattern: waitPattern, examples: ["30s"] }
        }
      : parameter
  const create = spec.paths?.["/jobs"]?.post
  if (create?.parameters !== undefined) {
    create.parameters = create.parameters.map(
      described(
        "wait",
        `${waitSyntaxDescription}. Wait this long for the new job to finish before answering; unset: answer at once`
      )
    )
  }
  const wait = spec.paths?.["/jobs/{id}/wait"]?.get
  if (wait === undefined) return
  wait.parameters = (wait.parameters ?? []).map(
    described("timeout", `${waitSyntaxDescription}; default ${defaultWaitSeconds} s`)
  )
  if (wait.responses?.["200"] !== undefined)
    wait.responses["200"].description = "The job is terminal: succeeded, failed_permanent or cancelled"
  if (wait.responses?.["202"] !== undefined)
    wait.responses["202"].description = "The timeout passed first: the job as it stands"
}

/** The document's finishing pass, for the API of these kinds (`OpenApi.annotations({ transform })`). */
export const completeWith = (kinds: ReadonlyArray<JobKind>) => (spec: Spec) => {
  discriminateNewJob(spec)
  describeKinds(spec, kinds)
  addResponseHeaders(spec)
  describeWaits(spec)
  dropEncodedSuffix(spec)
  dropSafeIntegerBounds(spec)
  return spec
}
