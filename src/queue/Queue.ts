/**
 * The queue's rules on top of `JobRepo`: a payload must match its kind, an idempotency key names one
 * request, cancel and retry apply to some states only. The API and embedding applications enqueue here.
 */
import { Cause, Context, type Duration, Effect, Exit, Layer, Option, Schema, SchemaAST } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import { PayloadConfig } from "../Config.ts"
import {
  DuplicateIdempotencyKey,
  IdempotencyConflict,
  InvalidPayload,
  InvalidUnique,
  JobNotFound,
  JobStateConflict,
  UnknownJobKind
} from "../domain/errors.ts"
import { type Enqueued, isJobId, type Job, type NewJob } from "../domain/Job.ts"
import { enqueuePayload, issuesOf, JobKinds, payloadParseOptions } from "../domain/JobKind.ts"
import { FlowRepo, isBlockedByDependencies } from "./FlowRepo.ts"
import * as Flows from "./Flows.ts"
import { uuidv7 } from "./ids.ts"
import * as JobFilter from "./JobFilter.ts"
import { type JobInsert, JobRepo } from "./JobRepo.ts"
import { depthIssue } from "./nesting.ts"
import { nulIssues } from "./nul.ts"
import { QueueControl } from "./QueueControl.ts"
import { requestHash } from "./requestHash.ts"
import * as TraceContext from "./TraceContext.ts"
import {
  declaredFields,
  hashUnique,
  isUniqueSpec,
  isUniqueViolation,
  type UniqueRequest,
  uniqueSpec
} from "./Uniqueness.ts"
import { Waiters, type WaitOutcome } from "./Waiters.ts"

export const defaultQueue = "default"
export const defaultMaxAttempts = 5
export const maxPageSize = 500
export const defaultPageSize = 50
/**
 * A page also ends once its jobs hold this many bytes of payload, result and errors (JSON text): it always
 * has at least one job, and the job that passes the budget is its last. A response then stays about this
 * size whatever `limit` asks for.
 */
export const maxPageBytes = 4 * 1024 * 1024

export interface ListQuery extends Omit<JobFilter.JobFilter, "ids"> {
  readonly cursor?: string | undefined
  readonly limit?: number | undefined
}

export interface JobPage {
  readonly jobs: ReadonlyArray<Job>
  /** Pass as `cursor` for the next page; null on the last page. */
  readonly nextCursor: string | null
}

export interface CancelOutcome {
  /** `cancelled`: it will not run. `cancel_requested`: it is running; its worker will interrupt it. */
  readonly outcome: "cancelled" | "cancel_requested"
  readonly job: Job
}

/**
 * A span for one queue call. Without the stack trace `Effect.withSpan` takes by default: that costs a
 * `new Error()` on every call, even with tracing off, for an attribute that points into Effect's internals.
 */
const spanned = (name: string, attributes?: Record<string, unknown>) =>
  Effect.withSpan(name, { attributes }, { captureStackTrace: false })

/**
 * One validated request: its row, whose hashes `hashed` fills in, and what they are made of (the request,
 * when it has an idempotency key; the `unique` parts).
 */
interface Prepared {
  readonly row: { -readonly [K in keyof JobInsert]: JobInsert[K] }
  readonly request: Readonly<Record<string, unknown>> | null
  readonly unique: UniqueRequest | null
}

const make = Effect.gen(function* () {
  const repo = yield* JobRepo
  const kinds = yield* JobKinds
  const sql = yield* SqlClient.SqlClient
  const waiters = yield* Waiters
  const payloadSchemas = new Map(kinds.all.map((kind) => [kind.name, enqueuePayload(kind.payload)]))
  /**
   * Kinds whose payload schema transforms nothing (no encoding anywhere in it): the decoded payload is
   * already what encoding it would give, so the second walk is skipped.
   */
  const encodesAsDecoded = new Set(
    [...payloadSchemas]
      .filter(([, schema]) => SchemaAST.toEncoded(schema.ast) === schema.ast)
      .map(([name]) => name)
  )
  /** Each kind's payload decoder, made once: `Schema.decodeUnknownExit(schema)` makes a new one per call. */
  const payloadDecoders = new Map(
    [...payloadSchemas].map(([name, schema]) => [name, Schema.decodeUnknownExit(schema)] as const)
  )
  const payloadFields = new Map(kinds.all.map((kind) => [kind.name, declaredFields(kind.payload)]))
  const { maxDepth } = Option.getOrElse(
    yield* Effect.serviceOption(PayloadConfig),
    () => PayloadConfig.defaults
  )
  // pause, resume, setLimits, getQueue, listQueues, listWorkers: see QueueControl
  const control = yield* QueueControl
  const flowRepo = yield* FlowRepo

  /**
   * Validates one request and makes its row; plain code, no Effect per item: a batch of a thousand runs
   * this a thousand times on the enqueue hot path.
   */
  const prepare = (
    input: NewJob,
    index: number | undefined,
    captured: TraceContext.TraceCarrier | undefined
  ): Prepared | UnknownJobKind | InvalidPayload | InvalidUnique => {
    const at = index === undefined ? {} : { index }
    const kind = kinds.get(input.kind)
    if (kind === undefined) {
      return new UnknownJobKind({
        kind: input.kind,
        known: kinds.names,
        ...at,
        message: `unknown job kind "${input.kind}"; known kinds: ${kinds.names.join(", ")}`
      })
    }
    // before anything walks the payload (decoding, the NUL scan, the hash): every walk is then bounded
    const tooDeep = depthIssue(input.payload, maxDepth)
    if (tooDeep !== undefined) {
      return new InvalidPayload({
        kind: input.kind,
        issues: [tooDeep],
        ...at,
        message: `payload of kind "${input.kind}" nests deeper than ${maxDepth} levels`
      })
    }
    const decoded = payloadDecoders.get(kind.name)!(input.payload, payloadParseOptions)
    const encoded =
      Exit.isSuccess(decoded) && !encodesAsDecoded.has(kind.name)
        ? Schema.encodeExit(payloadSchemas.get(kind.name)!)(decoded.value)
        : decoded
    if (Exit.isFailure(encoded)) {
      const error = Cause.findErrorOption(encoded.cause)
      return new InvalidPayload({
        kind: input.kind,
        issues: error._tag === "Some" ? issuesOf(error.value) : [{ path: [], message: "invalid payload" }],
        ...at,
        message: `payload does not match kind "${input.kind}"`
      })
    }
    const payload = encoded.value
    const nulInPayload = nulIssues(payload)
    if (nulInPayload.length > 0) {
      return new InvalidPayload({
        kind: input.kind,
        issues: nulInPayload,
        ...at,
        message: `payload of kind "${input.kind}" contains text that cannot be stored (NUL or a lone UTF-16 surrogate)`
      })
    }
    const queue = input.queue ?? defaultQueue
    const priority = input.priority ?? 0
    const maxAttempts = input.maxAttempts ?? kind.maxAttempts ?? defaultMaxAttempts
    const runAt = input.runAt ?? null
    const delayMs = runAt === null ? (input.delayMs ?? null) : null
    const key = input.idempotencyKey ?? null
    let unique: UniqueRequest | null = null
    if (input.unique !== undefined) {
      const spec = uniqueSpec(input.unique, { kind: kind.name, queue, payload }, payloadFields.get(kind.name))
      if (!isUniqueSpec(spec)) {
        return new InvalidUnique({
          kind: input.kind,
          issues: [...spec],
          ...at,
          message: `invalid unique options: ${spec.map((issue) => issue.message).join("; ")}`
        })
      }
      unique = spec
    }
    return {
      row: {
        id: uuidv7(),
        queue,
        kind: input.kind,
        payload,
        priority,
        maxAttempts,
        runAt,
        delayMs,
        idempotencyKey: key,
        requestHash: null, // set by `hashed`
        traceContext: input.traceContext ?? captured ?? null,
        unique: null // set by `hashed`
      },
      request:
        key === null
          ? null
          : {
              kind: input.kind,
              queue,
              payload,
              priority,
              maxAttempts,
              runAt: runAt?.toISOString() ?? null,
              delayMs
            },
      unique
    }
  }

  const isRow = (
    prepared: Prepared | UnknownJobKind | InvalidPayload | InvalidUnique
  ): prepared is Prepared => !("_tag" in prepared)

  /**
   * The rows with their idempotency and unique hashes (Web Crypto, asynchronous: one round for the whole
   * batch, none when no row has a key or `unique`).
   */
  const hashed = (batch: ReadonlyArray<Prepared>): Effect.Effect<Array<JobInsert>> => {
    const rows = batch.map((p) => p.row)
    if (batch.every((p) => p.request === null && p.unique === null)) return Effect.succeed(rows)
    return Effect.promise(() =>
      Promise.all(
        batch.map(async (p) => {
          if (p.request !== null) p.row.requestHash = await requestHash(p.request)
          if (p.unique !== null) p.row.unique = await hashUnique(p.unique)
        })
      )
    ).pipe(Effect.as(rows))
  }

  /**
   * The first item of a batch whose idempotency key an earlier item of the same batch carries for a different
   * request. Found in the database instead, it was a conflict naming the earlier item's job, which the
   * conflict's rollback then undid.
   */
  const differentRequestsOneKey = (rows: ReadonlyArray<JobInsert>) => {
    const firstWith = new Map<string, number>()
    for (let index = 0; index < rows.length; index++) {
      const key = rows[index]!.idempotencyKey
      if (key === null) continue
      const first = firstWith.get(key)
      if (first === undefined) firstWith.set(key, index)
      else if (rows[first]!.requestHash !== rows[index]!.requestHash)
        return new DuplicateIdempotencyKey({
          idempotencyKey: key,
          index,
          firstIndex: first,
          message: `items ${first} and ${index} carry idempotency key "${key}" for different requests`
        })
    }
    return undefined
  }

  const conflict = (key: string, jobId: string) =>
    new IdempotencyConflict({
      idempotencyKey: key,
      jobId,
      message: `idempotency key "${key}" was already used with a different request (job ${jobId})`
    })

  /**
   * Enqueues rows of which some asked for `unique`: inserts what no unique index refuses, then finds what
   * holds each refused row's key. The idempotency key first (a repeat, or a conflict), then the unique key
   * (a duplicate). A holder can leave its counted states (or be pruned) between the two statements: its row
   * is then inserted again, in the next round.
   */
  const enqueueUnique = (rows: ReadonlyArray<JobInsert>) =>
    Effect.gen(function* () {
      const results: Array<Enqueued | undefined> = rows.map(() => undefined)
      let pending = rows.map((_, index) => index)
      for (let round = 0; pending.length > 0; round++) {
        if (round > 3) return yield* Effect.die(new Error("a unique or idempotency key kept vanishing"))
        const outcomes = yield* repo.insertUnique(pending.map((index) => rows[index]!))
        const keys = new Map(outcomes.map((o) => [o.id, o]))
        const refused: Array<number> = []
        for (const index of pending) {
          const outcome = keys.get(rows[index]!.id)!
          if (outcome.job !== undefined)
            results[index] = { job: outcome.job, created: true, duplicate: false }
          else refused.push(index)
        }
        const idempotencyKeys = refused.flatMap((i) => rows[i]!.idempotencyKey ?? [])
        const byKey =
          idempotencyKeys.length === 0
            ? new Map()
            : new Map((yield* repo.findByIdempotencyKeys(idempotencyKeys)).map((j) => [j.idempotencyKey!, j]))
        const uniqueKeys = refused.flatMap((i) => keys.get(rows[i]!.id)!.uniqueKey ?? [])
        const byUnique =
          uniqueKeys.length === 0
            ? new Map()
            : new Map((yield* repo.findByUniqueKeys(uniqueKeys)).map((j) => [j.uniqueKey, j]))
        pending = []
        for (const index of refused) {
          const row = rows[index]!
          const sameKey = row.idempotencyKey === null ? undefined : byKey.get(row.idempotencyKey)
          if (sameKey !== undefined) {
            if (sameKey.requestHash !== row.requestHash)
              return yield* conflict(row.idempotencyKey!, sameKey.id)
            const { requestHash: _, ...job } = sameKey
            results[index] = { job, created: false, duplicate: false }
            continue
          }
          const holder = byUnique.get(keys.get(row.id)!.uniqueKey)
          if (holder === undefined) {
            pending.push(index)
            continue
          }
          const { uniqueKey: _, ...job } = holder
          results[index] = { job, created: false, duplicate: true }
        }
      }
      return results as Array<Enqueued>
    })

  const enqueue = (
    input: NewJob
  ): Effect.Effect<
    Enqueued,
    UnknownJobKind | InvalidPayload | InvalidUnique | IdempotencyConflict | SqlError.SqlError
  > =>
    Effect.gen(function* () {
      const prepared = prepare(input, undefined, yield* TraceContext.capture)
      if (!isRow(prepared)) return yield* prepared
      const [row] = (yield* hashed([prepared])) as [JobInsert]
      if (row.unique !== null) return (yield* enqueueUnique([row]))[0]!
      // A key's row can vanish between our failed insert and the lookup (pruned); then insert again.
      for (let round = 0; ; round++) {
        const inserted = yield* repo.insertOne(row)
        if (inserted !== undefined) return { job: inserted, created: true, duplicate: false }
        const key = row.idempotencyKey!
        const [existing] = yield* repo.findByIdempotencyKeys([key])
        if (existing !== undefined) {
          if (existing.requestHash !== row.requestHash) return yield* conflict(key, existing.id)
          const { requestHash: _, ...job } = existing
          return { job, created: false, duplicate: false }
        }
        if (round >= 3) return yield* Effect.die(new Error(`idempotency key "${key}" kept vanishing`))
      }
    }).pipe(spanned("Queue.enqueue", { "job.kind": input.kind }))

  /**
   * All or nothing: an invalid item or a key conflict rejects the whole batch. One statement when no job has an
   * idempotency key or `unique` (atomic on its own), else one transaction.
   */
  const enqueueMany = (inputs: ReadonlyArray<NewJob>) =>
    Effect.gen(function* () {
      if (inputs.length === 0) return []
      const captured = yield* TraceContext.capture
      const batch: Array<Prepared> = []
      for (let index = 0; index < inputs.length; index++) {
        const prepared = prepare(inputs[index]!, index, captured)
        if (!isRow(prepared)) return yield* prepared
        batch.push(prepared)
      }
      const rows = yield* hashed(batch)
      const duplicate = differentRequestsOneKey(rows)
      if (duplicate !== undefined) return yield* duplicate
      if (rows.some((row) => row.unique !== null)) return yield* sql.withTransaction(enqueueUnique(rows))
      // no idempotency key: one statement, atomic on its own (no BEGIN and COMMIT round trips), and every
      // row goes in, so each job is the inserted one in the batch's order
      if (rows.every((row) => row.idempotencyKey === null))
        return (yield* repo.insertAll(rows)).map(
          (job): Enqueued => ({ job, created: true, duplicate: false })
        )
      return yield* sql.withTransaction(
        Effect.gen(function* () {
          const inserted = new Map(
            (yield* repo.insertUnlessKeyTaken(rows)).map((job) => [job.id as string, job])
          )
          const missingKeys = rows.filter((r) => !inserted.has(r.id)).map((r) => r.idempotencyKey!)
          const existing =
            missingKeys.length === 0
              ? new Map()
              : new Map((yield* repo.findByIdempotencyKeys(missingKeys)).map((j) => [j.idempotencyKey!, j]))
          const results: Array<Enqueued> = []
          for (const row of rows) {
            const job = inserted.get(row.id)
            if (job !== undefined) {
              results.push({ job, created: true, duplicate: false })
              continue
            }
            const found = existing.get(row.idempotencyKey!)
            if (found === undefined) return yield* Effect.die(new Error("inserted job not returned"))
            if (found.requestHash !== row.requestHash) return yield* conflict(row.idempotencyKey!, found.id)
            const { requestHash: _, ...same } = found
            results.push({ job: same, created: false, duplicate: false })
          }
          return results
        })
      )
    }).pipe(spanned("Queue.enqueueMany", { "jobs.count": inputs.length }))

  // An id that cannot name a job is simply not found (and never reaches SQL as an invalid uuid).
  const known = (id: string) => (isJobId(id) ? Effect.void : Effect.fail(JobNotFound.of(id)))

  const get = (id: string) =>
    Effect.andThen(known(id), repo.get(id)).pipe(
      Effect.flatMap((job) => (job === undefined ? Effect.fail(JobNotFound.of(id)) : Effect.succeed(job)))
    )

  const list = (query: ListQuery) =>
    Effect.gen(function* () {
      // whole numbers in [1, maxPageSize]; NaN means "not given" (a fraction or NaN would reach SQL's LIMIT)
      const asked = query.limit === undefined || Number.isNaN(query.limit) ? defaultPageSize : query.limit
      const limit = Math.min(maxPageSize, Math.max(1, Math.floor(asked)))
      const { cursor, limit: _, ...filter } = query
      // a payload filter examines a bounded window of jobs per page (JobFilter)
      const upTo = yield* JobFilter.scanWindowEnd(filter, cursor).pipe(
        Effect.provideService(SqlClient.SqlClient, sql)
      )
      const { jobs, more } = yield* repo.list({
        ...filter,
        after: cursor,
        upTo,
        limit,
        maxBytes: maxPageBytes
      })
      return {
        jobs,
        nextCursor: more ? (jobs[jobs.length - 1]!.id as string) : (upTo ?? null)
      } satisfies JobPage
    })

  const stateConflict = (job: Job, action: string, why = `it is ${job.status}`) =>
    new JobStateConflict({
      id: job.id,
      status: job.status,
      message: `cannot ${action} job ${job.id}: ${why}`
    })

  const cancel = (id: string) =>
    Effect.gen(function* () {
      yield* known(id)
      const job = yield* repo.cancel(id)
      if (job !== undefined) {
        return {
          outcome: job.status === "cancelled" ? "cancelled" : "cancel_requested",
          job
        } satisfies CancelOutcome
      }
      const current = yield* get(id)
      // a job waiting in a flow (`repo.cancel` leaves blocked jobs alone: FlowRepo has their statement)
      if (current.status === "blocked" && (yield* flowRepo.cancelOneBlocked(id))) {
        return { outcome: "cancelled", job: yield* get(id) } satisfies CancelOutcome
      }
      return yield* stateConflict(current.status === "blocked" ? yield* get(id) : current, "cancel")
    }).pipe(spanned("Queue.cancel"))

  const retry = (id: string) =>
    Effect.gen(function* () {
      yield* known(id)
      if (yield* flowRepo.inCancelledFlow(id)) {
        return yield* Effect.flatMap(get(id), (current) =>
          Effect.fail(stateConflict(current, "retry", "its flow was cancelled"))
        )
      }
      // a unique job whose slot another job took meanwhile cannot go back into a counted state
      const job = yield* repo.retry(id).pipe(
        Effect.catchIf(isUniqueViolation, () =>
          Effect.flatMap(get(id), (current) =>
            Effect.fail(stateConflict(current, "retry", "another job holds its unique slot"))
          )
        ),
        // a flow's job whose dependencies have not all succeeded goes back to waiting for them
        Effect.catchIf(isBlockedByDependencies, () =>
          Effect.flatMap(flowRepo.retryBlocked(id), (retried) =>
            retried ? get(id) : Effect.succeed(undefined)
          )
        )
      )
      if (job !== undefined) return job
      return yield* Effect.flatMap(get(id), (current) => Effect.fail(stateConflict(current, "retry")))
    }).pipe(spanned("Queue.retry"))

  /**
   * Waits up to `timeout` for the job to be terminal (succeeded, failed_permanent, cancelled): at once when
   * it already is. `finished: false` is the job as it stands at the timeout. Fails with `JobNotFound` for
   * an unknown id, and for a job deleted while waited for (`JOB_RETENTION=0` deletes a job as it succeeds).
   */
  const awaitResult = (
    id: string,
    timeout: Duration.Input
  ): Effect.Effect<WaitOutcome, JobNotFound | SqlError.SqlError> =>
    Effect.andThen(known(id), waiters.awaitJob(id, timeout, get)).pipe(spanned("Queue.awaitResult"))

  /** `enqueue`, then `awaitResult` for the job it created (or the one its idempotency key or unique slot names). */
  const enqueueAndWait = (input: NewJob, timeout: Duration.Input) =>
    Effect.gen(function* () {
      const { job, created, duplicate } = yield* enqueue(input)
      const outcome = yield* awaitResult(job.id, timeout)
      return { ...outcome, created, duplicate }
    })

  // enqueueFlow, getFlow, cancelFlow: see Flows
  // flow jobs take neither an idempotency key nor `unique` (their type has neither; dropped here for a
  // caller without types), so no hash is to be made
  const flows = Flows.make({
    sql,
    jobRepo: repo,
    flowRepo,
    prepare: (input, index, captured) => {
      const { idempotencyKey: _, unique: __, ...rest } = input
      const prepared = prepare(rest, index, captured)
      return isRow(prepared) ? prepared.row : prepared
    }
  })

  return { enqueue, enqueueMany, get, list, cancel, retry, awaitResult, enqueueAndWait, ...control, ...flows }
})

export class Queue extends Context.Service<Queue, Effect.Success<typeof make>>()("jobq/Queue") {
  static readonly layer = Layer.effect(Queue, make)
}
