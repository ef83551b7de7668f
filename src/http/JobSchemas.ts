/**
 * What the API's job endpoints read and write, beside the domain's `Job`. The enqueue body is built from the
 * job kinds loaded at runtime: a union discriminated on `kind`, each member carrying its kind's payload
 * schema, so the OpenAPI document (and a client generated from it) knows every kind's payload.
 */
import { Schema } from "effect"
import {
  IdempotencyKey,
  instant,
  Job,
  JobId,
  JobStatus,
  KindName,
  MaxAttempts,
  Priority,
  QueueName
} from "../domain/Job.ts"
import { enqueuePayload, type JobKind } from "../domain/JobKind.ts"
import { UniqueOptions } from "../domain/Unique.ts"
import { nulIssues } from "../queue/nul.ts"
import { defaultPageSize, maxPageBytes, maxPageSize } from "../queue/Queue.ts"

/** Most jobs one `POST /jobs/batch` may carry. */
export const maxBatchSize = 1000
/** Longest delay a job may be scheduled with: one year. */
export const maxDelayMs = 365 * 24 * 3600 * 1000

const DelayMs = Schema.Int.pipe(
  Schema.check(Schema.isBetween({ minimum: 0, maximum: maxDelayMs })),
  Schema.annotate({ description: "Run no sooner than this many milliseconds from now" })
)
const RunAt = instant("Run no sooner than this instant")

/** The enqueue options every kind shares. */
export const jobOptions = {
  queue: Schema.optionalKey(QueueName),
  priority: Schema.optionalKey(Priority),
  runAt: Schema.optionalKey(RunAt),
  delayMs: Schema.optionalKey(DelayMs),
  maxAttempts: Schema.optionalKey(MaxAttempts),
  idempotencyKey: Schema.optionalKey(
    IdempotencyKey.annotate({
      description:
        "Makes the enqueue safe to repeat (1-255 printable ASCII characters); the Idempotency-Key header wins"
    })
  ),
  unique: Schema.optionalKey(UniqueOptions)
}

export const oneSchedule = Schema.makeFilter<{
  readonly runAt?: Date | undefined
  readonly delayMs?: number | undefined
}>(
  (job) =>
    job.runAt !== undefined && job.delayMs !== undefined
      ? { path: ["delayMs"], issue: "runAt and delayMs are mutually exclusive" }
      : undefined,
  { description: "runAt and delayMs are mutually exclusive" }
)

const componentName = (kind: string) => `NewJob_${kind.replace(/[^A-Za-z0-9._-]/g, "_")}`

const newJobOf = (kind: JobKind) =>
  Schema.Struct({
    kind: Schema.Literal(kind.name),
    payload: enqueuePayload(kind.payload),
    ...jobOptions
  })
    .check(oneSchedule)
    .annotate({
      identifier: componentName(kind.name),
      ...(kind.description === undefined ? {} : { description: kind.description })
    })

export const newJobIdentifier = "NewJob"
/** What a body that matches no kind is told. */
export const noKindMatches = (names: ReadonlyArray<string>) =>
  `Expected an object whose "kind" is one of: ${names.join(", ")}`

/** One job to enqueue: `{ kind, payload, ...options }`, the payload checked against its kind's schema. */
export const makeNewJob = (kinds: ReadonlyArray<JobKind>) => {
  if (kinds.length === 0) throw new Error("the API needs at least one job kind")
  return Schema.Union(kinds.map(newJobOf)).annotate({
    identifier: newJobIdentifier,
    message: noKindMatches(kinds.map((kind) => kind.name)),
    description: "A job to enqueue, discriminated on `kind`"
  })
}
export type NewJobRequest = Schema.Schema.Type<ReturnType<typeof makeNewJob>>

export const makeNewJobBatch = (newJob: ReturnType<typeof makeNewJob>) =>
  Schema.Struct({
    jobs: Schema.Array(newJob).check(Schema.isBetweenLength(1, maxBatchSize))
  }).annotate({ identifier: "NewJobBatch", description: `1 to ${maxBatchSize} jobs, enqueued all or none` })

/**
 * One item of a batch's answer: the job's id and state, not the whole job. The client sent the rest; echoing
 * a thousand jobs back, payloads included, doubled the bytes on the wire and was two thirds of the API's
 * CPU per batch. `GET /jobs/{id}` has the full job.
 */
export const BatchEntry = Schema.Struct({
  id: JobId,
  status: JobStatus.annotate({ description: "queued for a new job; any state for an idempotent repeat" }),
  created: Schema.Boolean.annotate({
    description: "false: an idempotent repeat of an earlier enqueue, or a unique duplicate"
  }),
  duplicate: Schema.Boolean.annotate({
    description: "true: a unique job already held the slot; `id` is that job"
  })
}).annotate({ identifier: "BatchEntry" })

/** The job an enqueue did not create: an idempotent repeat's, or the one a unique duplicate found. */
export const ExistingJob = Schema.Struct({
  ...Job.fields,
  duplicate: Schema.Boolean.annotate({
    description: "true: a unique job already held the slot (this is that job); false: an idempotent repeat"
  })
}).annotate({ identifier: "ExistingJob" })

export const EnqueuedBatch = Schema.Struct({
  jobs: Schema.Array(BatchEntry).annotate({ description: "In request order" })
}).annotate({ identifier: "EnqueuedBatch" })

/** Longest payload filter (`GET /jobs?payload=`, a bulk action's `filter.payload`), in characters. */
export const maxPayloadFilterLength = 4096
const maxPayloadFilterDepth = 16

const depthOf = (value: unknown, depth = 0): number => {
  if (depth > maxPayloadFilterDepth || value === null || typeof value !== "object") return depth
  let deepest = depth + 1
  for (const inner of Object.values(value)) deepest = Math.max(deepest, depthOf(inner, depth + 1))
  return deepest
}

// Postgres's `numeric`, which reads a jsonb number: at most 131,072 digits before the point and 16,383 after
const maxIntegerDigits = 131_072
const maxFractionDigits = 16_383
const numberToken = /-?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?/y

/**
 * The first number in JSON `text` that Postgres cannot read as a jsonb number (`1e999999`, `1e-20000`: a 500
 * before this check), as written. The filter goes to Postgres as the client wrote it, so that big numbers
 * compare exactly; JSON.parse read such a number as Infinity or 0 without a word. One pass over the text,
 * strings skipped.
 */
const numberOutOfRange = (text: string): string | undefined => {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 34) {
      // a string: to its closing quote, past escapes
      for (i++; i < text.length && text.charCodeAt(i) !== 34; i++) if (text.charCodeAt(i) === 92) i++
      continue
    }
    if (c !== 45 && (c < 48 || c > 57)) continue
    numberToken.lastIndex = i
    const match = numberToken.exec(text)
    if (match === null) continue
    const [token, integer = "", fraction = "", exponentText] = match
    const exponent = exponentText === undefined ? 0 : Number(exponentText)
    const significant = integer.replace(/^0+/, "")
    if (significant.length + exponent > maxIntegerDigits || fraction.length - exponent > maxFractionDigits)
      return token.length > 40 ? `${token.slice(0, 40)}…` : token
    i += token.length - 1
  }
  return undefined
}

/**
 * A payload containment filter: a JSON object, as text, matched with Postgres's `@>` (so `{"customer":42}`
 * finds every payload holding that key and value; numbers compare exactly, big ones included). Bounded:
 * at most 4096 characters and 16 levels, and a page examines at most 10,000 jobs for it (see `nextCursor`).
 */
export const PayloadFilter = Schema.String.check(
  Schema.isMaxLength(maxPayloadFilterLength),
  Schema.makeFilter(
    (text: string) => {
      let value: unknown
      try {
        value = JSON.parse(text)
      } catch {
        return 'Expected a JSON object, e.g. {"customer":42}'
      }
      if (value === null || typeof value !== "object" || Array.isArray(value))
        return 'Expected a JSON object, e.g. {"customer":42}'
      if (depthOf(value) > maxPayloadFilterDepth) return `nests deeper than ${maxPayloadFilterDepth} levels`
      const outOfRange = numberOutOfRange(text)
      if (outOfRange !== undefined)
        return `the number ${outOfRange} is out of range (at most ${maxIntegerDigits} digits before the point and ${maxFractionDigits} after)`
      // jsonb refuses these (the escape of a NUL or lone surrogate): a 500 before this check
      const unstorable = nulIssues(value)[0]
      return unstorable === undefined
        ? undefined
        : `${unstorable.path.length === 0 ? "" : `at ${unstorable.path.join(".")}: `}${unstorable.message}`
    },
    { description: "a JSON object" }
  )
).annotate({
  description:
    'Jobs whose payload contains this JSON object (Postgres `@>`), e.g. {"customer":42}; at most 4096 characters. Not indexed: a page examines at most 10,000 jobs (matching the other filters) for it, so a page may be short or empty with a `nextCursor`'
})

/** The filters `GET /jobs` and `POST /jobs/bulk` share. */
export const jobFilterFields = {
  status: Schema.optionalKey(JobStatus),
  kind: Schema.optionalKey(KindName),
  queue: Schema.optionalKey(QueueName),
  createdAfter: Schema.optionalKey(instant("Jobs created at or after this instant")),
  createdBefore: Schema.optionalKey(instant("Jobs created before this instant")),
  finishedAfter: Schema.optionalKey(instant("Jobs finished at or after this instant")),
  finishedBefore: Schema.optionalKey(instant("Jobs finished before this instant")),
  payload: Schema.optionalKey(PayloadFilter)
}

export const ListJobsQuery = {
  ...jobFilterFields,
  cursor: Schema.optionalKey(
    JobId.annotate({ description: "`nextCursor` of the previous page; omit for the first page" })
  ),
  limit: Schema.optionalKey(
    Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: maxPageSize })).annotate({
      description: `Jobs per page, 1-${maxPageSize} (default ${defaultPageSize})`
    })
  )
}

export const JobPage = Schema.Struct({
  jobs: Schema.Array(Job),
  nextCursor: Schema.NullOr(Schema.String).annotate({
    description: `Pass as \`cursor\` for the next page; null on the last page. A page may hold fewer than \`limit\` jobs: it also ends once its jobs' payloads, results and errors pass ${maxPageBytes / 1024 / 1024} MiB (it always holds one), or, with a \`payload\` filter, once it has examined 10,000 jobs (it may then be empty)`
  })
}).annotate({ identifier: "JobPage", description: "Jobs in id (creation) order" })

export const JobCancelled = Schema.Struct({
  outcome: Schema.Literal("cancelled"),
  job: Job
}).annotate({ identifier: "JobCancelled", description: "The job was queued or retrying; it will not run" })

export const CancelRequested = Schema.Struct({
  outcome: Schema.Literal("cancel_requested"),
  job: Job
}).annotate({
  identifier: "CancelRequested",
  description: "The job is running; its worker interrupts it and settles it as cancelled"
})

export const JobIdParams = { id: JobId }

export const IdempotencyHeaders = {
  "idempotency-key": Schema.optionalKey(
    IdempotencyKey.annotate({
      description:
        "Makes the enqueue safe to repeat (1-255 printable ASCII characters); wins over the body field"
    })
  )
}

export const Health = Schema.Struct({
  status: Schema.Literal("ok"),
  database: Schema.Literal("up")
}).annotate({ identifier: "Health" })

/** The longest wait a request may ask for (`GET /jobs/{id}/wait?timeout=`, `POST /jobs?wait=`), and the default. */
export const maxWaitSeconds = 60
export const defaultWaitSeconds = 30

// seconds (`30`, `2.5`) or with a unit (`500ms`, `30s`): at most 6 digits and 3 decimals, so bounded
export const waitPattern = "^(\\d{1,6}(?:\\.\\d{1,3})?)(ms|s)?$"
const waitSyntax = new RegExp(waitPattern)
export const waitSyntaxDescription = `Seconds (\`30\`, \`2.5\`) or a number with \`ms\` or \`s\` (\`500ms\`, \`30s\`), 0 to ${maxWaitSeconds} s`

/** Milliseconds a wait parameter names; undefined when it is not one (the schema refuses it first). */
export const waitMillis = (text: string): number | undefined => {
  const match = waitSyntax.exec(text)
  if (match === null) return undefined
  const value = Number(match[1])
  return match[2] === "ms" ? value : value * 1000
}

export const WaitDuration = Schema.String.check(
  Schema.isPattern(waitSyntax, {
    message: "Expected seconds (30, 2.5) or a number with ms or s (500ms, 30s)"
  }),
  Schema.makeFilter(
    (text: string) => {
      // text that is not a wait at all is the pattern's issue
      const ms = waitMillis(text)
      return ms === undefined || ms <= maxWaitSeconds * 1000 ? undefined : `at most ${maxWaitSeconds} s`
    },
    { description: `0 to ${maxWaitSeconds} seconds` }
  )
).annotate({ description: waitSyntaxDescription, examples: ["30s"] })

/** The wait's query (described in the document by OpenApiDocument: Effect leaves query parameters bare). */
export const WaitQuery = { timeout: Schema.optionalKey(WaitDuration) }

/** `POST /jobs?wait=`: wait this long for the new job to finish before answering; unset: answer at once. */
export const EnqueueQuery = { wait: Schema.optionalKey(WaitDuration) }
