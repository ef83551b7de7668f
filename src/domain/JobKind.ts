/**
 * A job kind: its name, the schema its payload must satisfy, and the handler a worker runs. One
 * definition drives validation in the API and execution in the worker. Applications define their own in a
 * module and point `JOBS_MODULE` at it (see `loadKinds`), or provide `JobKinds` from their own layer.
 */
import { pathToFileURL } from "node:url"
import { Context, Duration, Effect, Layer, Schema, SchemaAST, SchemaIssue } from "effect"
import type { Issue } from "./errors.ts"
import type { Job } from "./Job.ts"

/** What a handler knows about the job it runs. */
export interface JobContext {
  readonly job: Job
  /** 1 for the first attempt. */
  readonly attempt: number
  /**
   * Reports progress: any JSON value of at most `maxProgressBytes` and `maxProgressDepth` levels, shown as
   * the job's `progress`. It never waits for the database: the worker writes at most one value a second
   * per job (the latest), and the last one before the job settles.
   */
  readonly progress: (value: unknown) => Effect.Effect<void, InvalidProgress>
  /**
   * For a job in a flow, what each of its dependencies succeeded with, by the dependency's local name
   * (`dependsOn`); empty for a job outside a flow or without dependencies.
   */
  readonly parents: Readonly<Record<string, unknown>>
}

/** The largest progress value, as JSON text, and how deep it may nest. */
export const maxProgressBytes = 4096
export const maxProgressDepth = 8

/** A progress value that is not JSON, too large, or too deep; nothing is recorded. */
export class InvalidProgress extends Schema.TaggedError<InvalidProgress>()("InvalidProgress", {
  message: Schema.String
}) {}

/**
 * A failure the handler knows retrying cannot fix: the job fails permanently at once, keeping
 * its remaining attempts unspent. Any other failure is retried per the retry policy.
 */
export class PermanentError extends Schema.TaggedError<PermanentError>()("PermanentError", {
  message: Schema.String
}) {}

/** A job may snooze this many times; the next snooze fails it permanently. */
export const maxSnoozes = 100
/** The longest a snooze may last (a longer one is cut to this): one year, like an enqueue's delay. */
export const maxSnoozeMs = 365 * 24 * 3600 * 1000

/**
 * The handler ends this attempt to run again after `delayMs`, without spending an attempt (the job's
 * `snoozes` counts it). Fail with it through `snooze`.
 */
export class JobSnoozed extends Schema.TaggedError<JobSnoozed>()("JobSnoozed", {
  delayMs: Schema.Number,
  message: Schema.String
}) {}

/**
 * Ends the attempt and runs the job again after `duration` without spending an attempt:
 * `return yield* snooze("30 seconds")`. At most `maxSnoozes` snoozes per job (the next one fails it
 * permanently); a duration is cut to 0 .. `maxSnoozeMs`.
 */
export const snooze = (duration: Duration.Input): Effect.Effect<never, JobSnoozed> =>
  Effect.suspend(() => {
    const ms = Duration.toMillis(Duration.fromInputUnsafe(duration))
    const delayMs = Math.round(Math.min(maxSnoozeMs, Math.max(0, Number.isNaN(ms) ? 0 : ms)))
    return Effect.fail(new JobSnoozed({ delayMs, message: `snoozed for ${delayMs} ms` }))
  })

export interface JobKind<P = any> {
  readonly name: string
  readonly description?: string | undefined
  readonly payload: Schema.Codec<P, any>
  /** The handler's success value is stored as the job's result (it must be JSON-serialisable). */
  readonly handler: (payload: P, context: JobContext) => Effect.Effect<unknown, unknown>
  /** Each attempt is interrupted after this long and counts as a failed attempt. */
  readonly timeout?: Duration.Input | undefined
  /** Default for jobs of this kind that do not say. */
  readonly maxAttempts?: number | undefined
}

/** Declares a kind with its payload type inferred from the schema. */
/** The kind's name stays a literal type, so contracts derived from kinds are typed per kind. */
export const defineKind = <const Name extends string, S extends Schema.Codec<any, any>>(kind: {
  readonly name: Name
  readonly description?: string
  readonly payload: S
  readonly handler: (payload: S["Type"], context: JobContext) => Effect.Effect<unknown, unknown>
  readonly timeout?: Duration.Input
  readonly maxAttempts?: number
}): JobKind<S["Type"]> & { readonly name: Name } => kind

/**
 * The payload of a kind that takes none: an empty object, `{}`, and nothing else (any key is an excess
 * property). `Schema.Struct({})` would not do: Effect reads an empty struct as "any value but null".
 */
export const EmptyPayload = Schema.Record(
  Schema.String,
  Schema.Never.annotate({ message: "Expected no excess property" })
).annotate({ description: "An empty object", examples: [{}] })

/**
 * The schema an enqueue checks a kind's payload against: the kind's own, except that an empty
 * `Schema.Struct({})` means `EmptyPayload`, so "unknown payload keys are rejected" holds for every kind. Only
 * enqueues use it; a worker decodes stored payloads with the kind's own schema, as it always has.
 */
export const enqueuePayload = (schema: Schema.Codec<any, any>): Schema.Codec<any, any> => {
  const ast = schema.ast
  return SchemaAST.isObjects(ast) &&
    ast.propertySignatures.length === 0 &&
    ast.indexSignatures.length === 0 &&
    ast.checks === undefined &&
    ast.encoding === undefined
    ? EmptyPayload
    : schema
}

/**
 * How an enqueue decodes a payload: every issue listed, and a key the schema does not declare is an issue
 * (`onExcessProperty: "error"`), not silently dropped.
 */
export const payloadParseOptions = { errors: "all", onExcessProperty: "error" } as const

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

/** Flattens a schema issue into `{ path, message }` issues, every one of them. */
export const issuesFrom = (issue: SchemaIssue.Issue): Array<Issue> =>
  formatter(issue).issues.map((issue) => ({
    path: (issue.path ?? []).map((p) => {
      const key = typeof p === "object" && p !== null && "key" in p ? p.key : p
      return typeof key === "number" ? key : String(key)
    }),
    message: issue.message
  }))

/** Flattens a schema failure into `{ path, message }` issues, every one of them. */
export const issuesOf = (error: Schema.SchemaError): Array<Issue> => issuesFrom(error.issue)

export class JobKinds extends Context.Service<
  JobKinds,
  {
    readonly get: (name: string) => JobKind | undefined
    readonly names: ReadonlyArray<string>
    readonly all: ReadonlyArray<JobKind>
  }
>()("jobq/JobKinds") {
  static readonly make = (kinds: ReadonlyArray<JobKind>) => {
    const byName = new Map<string, JobKind>()
    for (const kind of kinds) {
      if (byName.has(kind.name)) throw new Error(`job kind "${kind.name}" is defined twice`)
      byName.set(kind.name, kind)
    }
    return JobKinds.of({ get: (name) => byName.get(name), names: [...byName.keys()], all: [...kinds] })
  }

  static readonly layer = (kinds: ReadonlyArray<JobKind>) => Layer.sync(JobKinds, () => JobKinds.make(kinds))
}

/**
 * Loads kinds from a module path: its `kinds` export, or its default export, must be an array of
 * `JobKind`s.
 */
export const loadKinds = (modulePath: string) =>
  Effect.tryPromise({
    try: async () => {
      const url = modulePath.startsWith("file:") ? modulePath : pathToFileURL(modulePath).href
      const mod = (await import(url)) as { kinds?: unknown; default?: unknown }
      const kinds = mod.kinds ?? mod.default
      if (!Array.isArray(kinds)) throw new Error(`it exports no "kinds" array (nor a default one)`)
      return kinds as ReadonlyArray<JobKind>
    },
    catch: (cause) => new Error(`cannot load job kinds from ${modulePath}: ${String(cause)}`)
  })
