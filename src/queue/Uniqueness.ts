/**
 * The unique key of an enqueue with `unique`: a SHA-256 of the parts it is compared by (canonical JSON), to
 * which the insert appends the bucket of the job's `run_at` in SQL (by the database's clock, like `run_at`
 * itself). The partial unique index over (key, counted states) is what makes it hold under concurrency.
 */
import { Cause, Exit, Schema, SchemaAST } from "effect"
import type { SqlError } from "effect/sql"
import type { Issue } from "../domain/errors.ts"
import { issuesOf } from "../domain/JobKind.ts"
import {
  defaultUniqueBy,
  parsePeriodMs,
  requiredUniqueStates,
  stateMask,
  UniqueOptions
} from "../domain/Unique.ts"
import { requestHash } from "./requestHash.ts"

/** A valid `unique` before its key is hashed: `parts` is what the hash is made of (`hashUnique`). */
export interface UniqueRequest {
  readonly parts: Readonly<Record<string, unknown>>
  readonly periodMs: number | null
  readonly states: number
}

/** What the insert stores: `unique_key = hash [|| '@' || bucket]` and `unique_states`. */
export interface UniqueSpec {
  readonly hash: string
  readonly periodMs: number | null
  readonly states: number
}

/**
 * The top-level field names a kind's (encoded) payload declares, or undefined when it does not list them
 * (a record, a union, anything but a plain struct): then any name is accepted.
 */
export const declaredFields = (schema: Schema.Top): ReadonlySet<string> | undefined => {
  const ast = SchemaAST.toEncoded(schema.ast)
  if (!SchemaAST.isObjects(ast) || ast.indexSignatures.length > 0) return undefined
  return new Set(ast.propertySignatures.map((p) => String(p.name)))
}

const decodeOptions = Schema.decodeUnknownExit(UniqueOptions)

/**
 * Checks the options (the library's input is not decoded elsewhere) and makes the spec; issues have paths
 * relative to `unique`.
 */
export const uniqueSpec = (
  options: unknown,
  job: { readonly kind: string; readonly queue: string; readonly payload: unknown },
  fields: ReadonlySet<string> | undefined
): UniqueRequest | ReadonlyArray<Issue> => {
  const decoded = decodeOptions(options, { errors: "all", onExcessProperty: "error" })
  if (Exit.isFailure(decoded)) {
    const error = Cause.findErrorOption(decoded.cause)
    return error._tag === "Some" ? issuesOf(error.value) : [{ path: [], message: "invalid unique options" }]
  }
  const { by = defaultUniqueBy, period, states = requiredUniqueStates } = decoded.value
  const parts = [...new Set(by)].sort()
  const issues: Array<Issue> = []
  const named: Record<string, unknown> = {}
  const payload = job.payload !== null && typeof job.payload === "object" ? job.payload : {}
  parts.forEach((part) => {
    if (!part.startsWith("payload.")) return
    const field = part.slice("payload.".length)
    if (fields !== undefined && !fields.has(field)) {
      issues.push({
        path: ["by", by.indexOf(part)],
        message: `kind "${job.kind}" has no payload field "${field}"`
      })
    }
    named[field] = Object.hasOwn(payload, field) ? (payload as Record<string, unknown>)[field] : null
  })
  if (issues.length > 0) return issues
  const periodMs = period === undefined ? null : (parsePeriodMs(period) as number)
  const mask = stateMask(states)
  return {
    parts: {
      by: parts,
      kind: parts.includes("kind") ? job.kind : undefined,
      queue: parts.includes("queue") ? job.queue : undefined,
      payload: parts.includes("payload") ? job.payload : undefined,
      fields: named,
      periodMs,
      states: mask
    },
    periodMs,
    states: mask
  }
}

/** The spec the insert stores, its key hashed. */
export const hashUnique = async (request: UniqueRequest): Promise<UniqueSpec> => ({
  hash: await requestHash(request.parts),
  periodMs: request.periodMs,
  states: request.states
})

/** Whether a statement was refused by `jobs_unique_key_idx` (a job entering a slot another holds). */
export const isUniqueViolation = (error: SqlError.SqlError) => {
  const cause = error.reason.cause as
    | { readonly code?: unknown; readonly constraint_name?: unknown }
    | undefined
  return cause?.code === "23505"
}

export const isUniqueSpec = (spec: UniqueRequest | ReadonlyArray<Issue>): spec is UniqueRequest =>
  "parts" in spec
