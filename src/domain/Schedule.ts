/**
 * Cron schedules: what one is (name, expression, zone, the job it enqueues, its catch-up and overlap
 * policies), the schemas the API and `defineSchedule` check a definition against, and the pure parsing of an
 * expression with Effect's own `Cron`. No I/O: the slots are computed in `queue/Slots.ts`, fired by
 * `queue/Scheduler.ts`, and the one-job-per-slot guarantee is the primary key of `schedule_fires`
 * (migration 0006). docs/schedules.md explains the semantics.
 */
import { Context, Cron, DateTime, Layer, Option, Result, Schema } from "effect"
import { MaxAttempts, Priority, QueueName } from "./Job.ts"
import type { JobKind } from "./JobKind.ts"
import { PausedBy, PauseReason } from "./Queues.ts"

export const maxScheduleNameLength = 128
export const maxExpressionLength = 200
/** Missed slots are looked at within this window at most (the `backfill` bound): 7 days. */
export const maxBackfillMs = 7 * 24 * 3600 * 1000
/** The default `backfill`: 1 hour. */
export const defaultBackfillMs = 3600 * 1000
/** A slot this late or less is on time: `catchUp: "none"` still fires it (a tick runs every second). */
export const onTimeMs = 60 * 1000
/** How many upcoming fire times a schedule answers. */
export const upcomingCount = 5

/** Shorthands, each the 5-field expression it stands for. */
export const shorthands: Readonly<Record<string, string>> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *"
}

/**
 * Parses an expression (5 fields, or 6 with seconds first, or a shorthand) in a named IANA zone. A local
 * time repeated when clocks fall back fires once, at its first occurrence (`onDstOverlap: "earlier"`); a
 * local time skipped when clocks spring forward fires at the first instant after the gap (02:30 in a
 * 02:00-03:00 gap fires at 03:00).
 */
export const parseCron = (expression: string, timeZone: string): Result.Result<Cron.Cron, string> => {
  const zone = DateTime.zoneMakeNamed(timeZone)
  if (Option.isNone(zone))
    return Result.fail(`unknown time zone "${timeZone}"; use an IANA name such as "Europe/Berlin"`)
  const trimmed = expression.trim()
  const text = shorthands[trimmed.toLowerCase()] ?? trimmed
  if (text.startsWith("@"))
    return Result.fail(`unknown shorthand "${trimmed}"; known: ${Object.keys(shorthands).join(", ")}`)
  const fields = text.split(/\s+/).length
  if (fields !== 5 && fields !== 6)
    return Result.fail(
      `expected 5 fields (minute hour day month weekday), or 6 with seconds first; got ${fields}`
    )
  const parsed = Cron.parse(text, zone.value, { onDstOverlap: "earlier" })
  if (Result.isFailure(parsed)) return Result.fail(parsed.failure.message)
  try {
    // an expression naming no real date (0 0 30 2 *) parses, but `Cron.next` finds nothing and throws
    Cron.next(parsed.success, neverFiresProbe)
  } catch {
    return Result.fail(`the expression names no date that exists (e.g. 30 February), so it would never fire`)
  }
  return Result.succeed(parsed.success)
}

const neverFiresProbe = new Date("2000-01-01T00:00:00Z")

export const ScheduleName = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/u)),
  Schema.annotate({
    description: `Schedule name: 1-${maxScheduleNameLength} characters of A-Z a-z 0-9 _ . : -, starting with a letter or digit`
  })
)

export const CronExpression = Schema.String.pipe(
  Schema.check(Schema.isBetweenLength(1, maxExpressionLength)),
  Schema.check(
    Schema.makeFilter<string>((text) => {
      const parsed = parseCron(text, "UTC")
      return Result.isFailure(parsed) ? parsed.failure : undefined
    })
  ),
  Schema.annotate({
    description:
      "Cron expression: 5 fields (minute hour day-of-month month day-of-week), or 6 with a seconds field first, or one of @yearly @annually @monthly @weekly @daily @midnight @hourly",
    examples: ["0 3 * * *", "*/15 * * * * *", "@hourly"]
  })
)

export const TimeZoneName = Schema.String.pipe(
  Schema.check(Schema.isBetweenLength(1, 64)),
  Schema.check(
    Schema.makeFilter<string>((zone) =>
      Option.isNone(DateTime.zoneMakeNamed(zone))
        ? `unknown time zone "${zone}"; use an IANA name such as "Europe/Berlin" or "UTC"`
        : undefined
    )
  ),
  Schema.annotate({
    description: "IANA time zone the expression is read in; default UTC",
    examples: ["Europe/Berlin"]
  })
)

export const CatchUp = Schema.Literals(["none", "latest", "all"]).annotate({
  description:
    "Slots missed while no worker ticked (downtime): none skips them, latest runs the most recent one once, all runs each one within `backfill`; default latest"
})
export type CatchUp = typeof CatchUp.Type

export const Overlap = Schema.Literals(["allow", "skip"]).annotate({
  description:
    "allow: every slot enqueues a job; skip: a slot is skipped while the schedule's previous run is still queued, retrying or running; default allow"
})
export type Overlap = typeof Overlap.Type

const unitMs: ReadonlyArray<readonly [string, number]> = [
  ["day", 86_400_000],
  ["hour", 3_600_000],
  ["minute", 60_000],
  ["second", 1000]
]
const backfillPattern = /^(0|[1-9]\d{0,8}) (second|minute|hour|day)s?$/

/** A backfill window's length in milliseconds, or why the text names none in range. */
export const parseBackfillMs = (text: string): number | string => {
  const match = backfillPattern.exec(text)
  if (match === null) return `Expected a window such as "0 seconds", "15 minutes", "1 hour" or "7 days"`
  const ms = Number(match[1]) * unitMs.find(([unit]) => unit === match[2])![1]
  return ms <= maxBackfillMs ? ms : "Expected a window of at most 7 days"
}

/** A window as text in its largest whole unit: 3600000 -> "1 hour". */
export const formatBackfill = (ms: number): string => {
  for (const [unit, size] of unitMs) {
    if (ms >= size && ms % size === 0) return `${ms / size} ${unit}${ms / size === 1 ? "" : "s"}`
  }
  return ms === 0 ? "0 seconds" : `${Math.round(ms / 1000)} seconds`
}

export const Backfill = Schema.String.pipe(
  Schema.check(
    Schema.makeFilter<string>((text) => {
      const ms = parseBackfillMs(text)
      return typeof ms === "string" ? ms : undefined
    })
  ),
  Schema.annotate({
    description:
      'How far back missed slots are looked at (catch-up latest and all): "0 seconds" to "7 days"; default "1 hour"',
    examples: ["1 hour", "2 days"]
  })
)

/** A schedule as defined (in code or over HTTP); the kind and payload are checked against the kinds apart. */
export const ScheduleDefinition = Schema.Struct({
  name: ScheduleName,
  cron: CronExpression,
  timeZone: Schema.optionalKey(TimeZoneName),
  kind: Schema.String.pipe(Schema.check(Schema.isBetweenLength(1, 128))).annotate({
    description: "Job kind each run enqueues; must be a kind the server knows"
  }),
  payload: Schema.optionalKey(Schema.Unknown).annotate({
    description:
      "Payload of each run, checked against the kind's schema when the schedule is defined; default {}"
  }),
  queue: Schema.optionalKey(QueueName),
  priority: Schema.optionalKey(Priority),
  maxAttempts: Schema.optionalKey(MaxAttempts),
  catchUp: Schema.optionalKey(CatchUp),
  backfill: Schema.optionalKey(Backfill),
  overlap: Schema.optionalKey(Overlap)
}).annotate({ identifier: "ScheduleDefinition", description: "A cron schedule to create or replace" })
export type ScheduleDefinition = typeof ScheduleDefinition.Type

/** A change of a schedule's definition: every field optional, a field left out keeps its value. */
export const ScheduleChange = Schema.Struct({
  cron: Schema.optionalKey(CronExpression),
  timeZone: Schema.optionalKey(TimeZoneName),
  kind: Schema.optionalKey(Schema.String.pipe(Schema.check(Schema.isBetweenLength(1, 128)))),
  payload: Schema.optionalKey(Schema.Unknown),
  queue: Schema.optionalKey(QueueName),
  priority: Schema.optionalKey(Priority),
  maxAttempts: Schema.optionalKey(MaxAttempts),
  catchUp: Schema.optionalKey(CatchUp),
  backfill: Schema.optionalKey(Backfill),
  overlap: Schema.optionalKey(Overlap)
}).annotate({
  identifier: "ScheduleChange",
  description: "Fields to change; one left out keeps its value. The result is checked like a new definition"
})
export type ScheduleChange = typeof ScheduleChange.Type

export const SchedulePause = Schema.Struct({
  at: Schema.Date,
  by: Schema.NullOr(Schema.String),
  reason: Schema.NullOr(Schema.String)
}).annotate({
  identifier: "SchedulePause",
  description: "Since when the schedule is paused, by whom, and why"
})

export const LastRun = Schema.Struct({
  jobId: Schema.String,
  slot: Schema.NullOr(Schema.Date).annotate({ description: "The slot it ran for; null for a trigger" }),
  status: Schema.NullOr(Schema.String).annotate({
    description: "The job's status now; null once the job was pruned"
  })
}).annotate({ identifier: "LastRun" })

export const ScheduleInfo = Schema.Struct({
  name: Schema.String,
  cron: Schema.String,
  timeZone: Schema.String,
  kind: Schema.String,
  payload: Schema.Unknown,
  queue: Schema.String,
  priority: Schema.Int,
  maxAttempts: Schema.Int,
  catchUp: CatchUp,
  backfill: Schema.String,
  overlap: Overlap,
  source: Schema.Literals(["code", "api"]).annotate({
    description: "code: defined by a worker's JOBS_MODULE (re-asserted at every worker start); api: over HTTP"
  }),
  paused: Schema.Boolean,
  pause: Schema.NullOr(SchedulePause),
  nextFireTimes: Schema.Array(Schema.String).annotate({
    description: `The next ${upcomingCount} slots, ISO 8601 with the zone's offset (none while paused)`
  }),
  lastRun: Schema.NullOr(LastRun),
  createdAt: Schema.Date,
  updatedAt: Schema.Date
}).annotate({
  identifier: "ScheduleInfo",
  description: "A cron schedule, its next fire times and its last run"
})
export type ScheduleInfo = typeof ScheduleInfo.Type

export { PausedBy, PauseReason }

/**
 * Declares a schedule in code, next to the kinds: export it in `schedules` of your `JOBS_MODULE` (or pass it
 * to `Worker.layer({ schedules })`). Every worker upserts its schedules when it starts, leaving an operator's
 * pause alone; one whose kind is unknown or whose payload does not match fails the start, naming it.
 */
export const defineSchedule = <P>(
  schedule: Omit<ScheduleDefinition, "kind" | "payload"> & {
    readonly kind: JobKind<P> | string
    readonly payload?: P | undefined
  }
): ScheduleDefinition => {
  const { kind, payload, ...rest } = schedule
  return {
    ...rest,
    kind: typeof kind === "string" ? kind : kind.name,
    ...(payload === undefined ? {} : { payload })
  }
}

/** A definition that breaks the rules (an unknown kind, a payload the kind refuses, ...); every issue listed. */
export class InvalidSchedule extends Schema.TaggedError<InvalidSchedule>()("InvalidSchedule", {
  name: Schema.String,
  issues: Schema.Array(
    Schema.Struct({
      path: Schema.Array(Schema.Union([Schema.String, Schema.Number])),
      message: Schema.String
    })
  ),
  message: Schema.String
}) {}

export class ScheduleNotFound extends Schema.TaggedError<ScheduleNotFound>()("ScheduleNotFound", {
  name: Schema.String,
  message: Schema.String
}) {
  static readonly of = (name: string) =>
    new ScheduleNotFound({ name, message: `no schedule named "${name}"` })
}

/**
 * The schedules defined in code (a `schedules` export of `JOBS_MODULE`, or `Worker.layer({ schedules })`),
 * upserted by every worker when it starts.
 */
export class CodeSchedules extends Context.Service<CodeSchedules, ReadonlyArray<ScheduleDefinition>>()(
  "jobq/CodeSchedules"
) {
  static readonly layer = (schedules: ReadonlyArray<ScheduleDefinition>) =>
    Layer.succeed(CodeSchedules, schedules)
}
