/**
 * Schedules' rules on top of `ScheduleRepo`: a definition is checked in full when it is made (the name,
 * expression and zone, the kind among the known kinds, the payload against the kind's schema), never when
 * a slot fires; defaults are resolved once and stored. Used by the API's `schedules` group and by the
 * worker's start (code-defined schedules, `source` 'code').
 *
 * On a definition that changes the expression or the zone, the cursor moves to now: the new expression's
 * slots count from the change on, no slot before it is caught up, and a slot already fired is never fired
 * again (its `schedule_fires` row stays). Other changes (payload, queue, policies) keep the cursor. A resume
 * moves the cursor to now too: slots of the pause are not caught up.
 */
import { Cause, Clock, Context, DateTime, Effect, Exit, Layer, Option, Result, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { PayloadConfig } from "../Config.ts"
import type { Issue } from "../domain/errors.ts"
import { enqueuePayload, issuesOf, JobKinds, payloadParseOptions } from "../domain/JobKind.ts"
import {
  defaultBackfillMs,
  formatBackfill,
  InvalidSchedule,
  parseBackfillMs,
  parseCron,
  type ScheduleChange,
  ScheduleDefinition,
  type ScheduleInfo,
  ScheduleNotFound,
  upcomingCount
} from "../domain/Schedule.ts"
import { depthIssue } from "./nesting.ts"
import { nulIssues } from "./nul.ts"
import { ScheduleRepo, type ScheduleRow, type ScheduleWrite } from "./ScheduleRepo.ts"
import { upcoming } from "./Slots.ts"

export const maxSchedulesPage = 500

const later = (a: Date, b: Date) => (a > b ? a : b)

const invalid = (name: string, issues: ReadonlyArray<Issue>) =>
  new InvalidSchedule({
    name,
    issues,
    message: `schedule "${name}": ${issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`
  })

/** ISO 8601 with the zone's offset: 2026-03-29T03:00:00.000+02:00. */
const inZone = (date: Date, timeZone: string) =>
  DateTime.formatIsoOffset(DateTime.makeZonedUnsafe(date, { timeZone }))

export const toInfo = (row: ScheduleRow, now: Date): ScheduleInfo => {
  const cron = parseCron(row.expression, row.timeZone)
  const after = row.cursorAt > now ? row.cursorAt : now
  return {
    name: row.name,
    cron: row.expression,
    timeZone: row.timeZone,
    kind: row.kind,
    payload: row.payload,
    queue: row.queue,
    priority: row.priority,
    maxAttempts: row.maxAttempts,
    catchUp: row.catchUp,
    backfill: formatBackfill(row.backfillMs),
    overlap: row.overlap,
    source: row.source,
    paused: row.pausedAt !== null,
    pause: row.pausedAt === null ? null : { at: row.pausedAt, by: row.pausedBy, reason: row.pauseReason },
    nextFireTimes:
      row.pausedAt !== null || Result.isFailure(cron)
        ? []
        : upcoming(cron.success, after, upcomingCount).map((d) => inZone(d, row.timeZone)),
    lastRun:
      row.lastJobId === null ? null : { jobId: row.lastJobId, slot: row.lastSlot, status: row.lastStatus },
    createdAt: row.createdAt,
    updatedAt: row.updatedAt
  }
}

const make = Effect.gen(function* () {
  const repo = yield* ScheduleRepo
  const sql = yield* SqlClient.SqlClient
  const kinds = yield* JobKinds
  const { maxDepth } = Option.getOrElse(
    yield* Effect.serviceOption(PayloadConfig),
    () => PayloadConfig.defaults
  )
  const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))

  /** Every issue of a definition, with its defaults resolved when there is none. */
  const resolve = (
    input: unknown,
    source: "code" | "api"
  ): Result.Result<Omit<ScheduleWrite, "cursorAt" | "nextAt">, InvalidSchedule> => {
    const name =
      typeof input === "object" && input !== null && typeof (input as { name?: unknown }).name === "string"
        ? (input as { name: string }).name
        : "(unnamed)"
    const shape = Schema.decodeUnknownExit(ScheduleDefinition)(input, payloadParseOptions)
    if (Exit.isFailure(shape)) {
      const error = Cause.findErrorOption(shape.cause)
      return Result.fail(
        invalid(name, error._tag === "Some" ? issuesOf(error.value) : [{ path: [], message: "invalid" }])
      )
    }
    const def = shape.value
    const kind = kinds.get(def.kind)
    if (kind === undefined)
      return Result.fail(
        invalid(def.name, [
          {
            path: ["kind"],
            message: `unknown job kind "${def.kind}"; known kinds: ${kinds.names.join(", ")}`
          }
        ])
      )
    const raw = def.payload === undefined ? {} : def.payload
    const tooDeep = depthIssue(raw, maxDepth)
    if (tooDeep !== undefined)
      return Result.fail(
        invalid(def.name, [{ path: ["payload", ...tooDeep.path], message: tooDeep.message }])
      )
    const schema = enqueuePayload(kind.payload)
    const decoded = Schema.decodeUnknownExit(schema)(raw, payloadParseOptions)
    const encoded = Exit.isSuccess(decoded) ? Schema.encodeExit(schema)(decoded.value) : decoded
    if (Exit.isFailure(encoded)) {
      const error = Cause.findErrorOption(encoded.cause)
      const issues =
        error._tag === "Some" ? issuesOf(error.value) : [{ path: [], message: "invalid payload" }]
      return Result.fail(
        invalid(
          def.name,
          issues.map((i) => ({ path: ["payload", ...i.path], message: i.message }))
        )
      )
    }
    const nul = nulIssues(encoded.value)
    if (nul.length > 0)
      return Result.fail(
        invalid(
          def.name,
          nul.map((i) => ({ path: ["payload", ...i.path], message: i.message }))
        )
      )
    const backfill = def.backfill === undefined ? defaultBackfillMs : parseBackfillMs(def.backfill)
    return Result.succeed({
      name: def.name,
      expression: def.cron.trim(),
      timeZone: def.timeZone ?? "UTC",
      kind: kind.name,
      payload: encoded.value,
      queue: def.queue ?? "default",
      priority: def.priority ?? 0,
      maxAttempts: def.maxAttempts ?? kind.maxAttempts ?? 5,
      catchUp: def.catchUp ?? "latest",
      backfillMs: typeof backfill === "number" ? backfill : defaultBackfillMs,
      overlap: def.overlap ?? "allow",
      source
    })
  }

  /** Checks a definition without writing it (a worker's start checks every one before writing any). */
  const check = (input: unknown, source: "code" | "api" = "api") =>
    Effect.suspend(() => Effect.fromResult(resolve(input, source)))

  const found = (name: string) =>
    Effect.flatMap(repo.get(name), (row) =>
      row === undefined ? Effect.fail(ScheduleNotFound.of(name)) : Effect.succeed(row)
    )

  const info = (name: string) =>
    Effect.flatMap(Effect.all([found(name), now]), ([row, at]) => Effect.succeed(toInfo(row, at)))

  /**
   * Writes a checked definition over `before` (the row as locked by the caller's transaction, undefined for
   * a new schedule), moving the cursor as the module's note says.
   */
  const store = (
    write: Omit<ScheduleWrite, "cursorAt" | "nextAt">,
    before: ScheduleRow | undefined,
    at: Date
  ) =>
    Effect.gen(function* () {
      const cron = parseCron(write.expression, write.timeZone)
      if (Result.isFailure(cron)) return yield* Effect.die(cron.failure)
      const same =
        before !== undefined && before.expression === write.expression && before.timeZone === write.timeZone
      const cursorAt = same
        ? before.cursorAt
        : before !== undefined && before.cursorAt > at
          ? before.cursorAt
          : at
      yield* repo.upsert({ ...write, cursorAt, nextAt: upcoming(cron.success, cursorAt, 1)[0]! })
    })

  /** Creates the schedule or replaces its definition (see the module's note on the cursor). */
  const define = (input: unknown, source: "code" | "api" = "api") =>
    Effect.gen(function* () {
      const at = yield* now
      const write = yield* Effect.fromResult(resolve(input, source))
      yield* sql.withTransaction(
        Effect.flatMap(repo.getForUpdate(write.name), (before) => store(write, before, at))
      )
      return yield* info(write.name)
    }).pipe(Effect.withSpan("Schedule.define", {}, { captureStackTrace: false }))

  /**
   * Changes some fields; the result is checked like a new definition. The row is read and written under
   * its lock, in one transaction: a change never re-creates a schedule deleted meanwhile (a 404), nor
   * writes back fields another change made meanwhile.
   */
  const change = (name: string, patch: ScheduleChange) =>
    Effect.gen(function* () {
      const at = yield* now
      yield* sql.withTransaction(
        Effect.gen(function* () {
          const row = yield* repo.getForUpdate(name)
          if (row === undefined) return yield* Effect.fail(ScheduleNotFound.of(name))
          const write = yield* Effect.fromResult(
            resolve(
              {
                name,
                cron: row.expression,
                timeZone: row.timeZone,
                kind: row.kind,
                payload: row.payload,
                queue: row.queue,
                priority: row.priority,
                maxAttempts: row.maxAttempts,
                catchUp: row.catchUp,
                backfill: formatBackfill(row.backfillMs),
                overlap: row.overlap,
                ...patch
              },
              row.source
            )
          )
          yield* store(write, row, at)
        })
      )
      return yield* info(name)
    }).pipe(Effect.withSpan("Schedule.change", {}, { captureStackTrace: false }))

  const list = (
    options: { readonly cursor?: string | undefined; readonly limit?: number | undefined } = {}
  ) =>
    Effect.gen(function* () {
      const limit = Math.min(maxSchedulesPage, Math.max(1, Math.floor(options.limit ?? maxSchedulesPage)))
      const rows = yield* repo.list(limit + 1, options.cursor)
      const at = yield* now
      const page = rows.slice(0, limit)
      return {
        schedules: page.map((row) => toInfo(row, at)),
        nextCursor: rows.length > limit ? page[page.length - 1]!.name : null
      }
    })

  const remove = (name: string) =>
    Effect.flatMap(repo.remove(name), (existed) =>
      existed ? Effect.void : Effect.fail(ScheduleNotFound.of(name))
    )

  const pause = (
    name: string,
    options: { readonly reason?: string | undefined; readonly by?: string | undefined }
  ) =>
    Effect.gen(function* () {
      const before = yield* found(name)
      yield* repo.pause(name, options.reason ?? null, options.by ?? null)
      return {
        outcome: before.pausedAt === null ? "paused" : "already_paused",
        message:
          before.pausedAt === null
            ? `schedule "${name}" is paused; its slots do not fire until it is resumed`
            : options.reason === undefined
              ? `schedule "${name}" was already paused; its pause and reason are unchanged`
              : `schedule "${name}" was already paused; its pause time is unchanged, its reason replaced`,
        schedule: yield* info(name)
      } as const
    })

  /** Resumes the schedule from now on: the slots of the pause are not caught up. */
  const resume = (name: string) =>
    sql.withTransaction(
      Effect.gen(function* () {
        const before = yield* repo.getForUpdate(name)
        if (before === undefined) return yield* Effect.fail(ScheduleNotFound.of(name))
        if (before.pausedAt !== null) {
          const at = yield* now
          const cursorAt = later(before.cursorAt, at)
          const cron = parseCron(before.expression, before.timeZone)
          const nextAt = Result.isSuccess(cron) ? upcoming(cron.success, cursorAt, 1)[0]! : null
          yield* repo.resume(name, cursorAt, nextAt)
        }
        return {
          outcome: before.pausedAt === null ? "not_paused" : "resumed",
          message:
            before.pausedAt === null
              ? `schedule "${name}" was not paused; nothing changed`
              : `schedule "${name}" is resumed; its next slot fires, the slots of the pause do not`,
          schedule: yield* info(name)
        } as const
      })
    )

  /** Enqueues one run now, paused or not, outside any slot; answers the job's id. */
  const trigger = (name: string) =>
    Effect.gen(function* () {
      const jobId = yield* repo.trigger(name)
      if (jobId === undefined) return yield* Effect.fail(ScheduleNotFound.of(name))
      return { jobId, schedule: yield* info(name) }
    })

  return { check, define, change, get: info, list, remove, pause, resume, trigger }
})

export class ScheduleControl extends Context.Service<ScheduleControl, Effect.Success<typeof make>>()(
  "jobq/ScheduleControl"
) {
  static readonly layer = Layer.effect(ScheduleControl, make).pipe(Layer.provideMerge(ScheduleRepo.layer))
}
