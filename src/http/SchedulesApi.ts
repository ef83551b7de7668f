/**
 * The contract of the `schedules` group: cron schedules defined over HTTP (or in code, and then seen and
 * steered here): list, create or replace, read, change, delete, pause, resume, trigger one run now. Bodies
 * are strict: a key the schema does not name is a 422. A definition whose kind is unknown or whose payload
 * the kind refuses is a 422 naming the field. Handlers are in SchedulesHandlers; semantics in
 * docs/schedules.md.
 */
import { Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiError, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import {
  PausedBy,
  PauseReason,
  ScheduleChange,
  ScheduleDefinition,
  ScheduleInfo,
  ScheduleName
} from "../domain/Schedule.ts"
import { maxSchedulesPage } from "../queue/ScheduleControl.ts"
import { alwaysProblems, bodyProblems, ValidationFailed } from "./Problems.ts"

export class ScheduleNotFound extends HttpApiError.Problem<ScheduleNotFound>()(
  "ScheduleNotFound",
  { type: "urn:jobq:problem:schedule-not-found", status: 404, title: "No such schedule" },
  { schedule: Schema.String }
) {}

const always = alwaysProblems
const withBody = bodyProblems
const strict = { errors: "all", onExcessProperty: "error" } as const

export const ScheduleNameParams = { name: ScheduleName }

export const ListSchedulesQuery = {
  cursor: Schema.optionalKey(
    ScheduleName.annotate({ description: "`nextCursor` of the previous page; omit for the first page" })
  ),
  limit: Schema.optionalKey(
    Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: maxSchedulesPage })).annotate({
      description: `Schedules per page, 1-${maxSchedulesPage} (default ${maxSchedulesPage})`
    })
  )
}

export const SchedulePage = Schema.Struct({
  schedules: Schema.Array(ScheduleInfo),
  nextCursor: Schema.NullOr(Schema.String).annotate({
    description: "Pass as `cursor` for the next page; null on the last page"
  })
}).annotate({ identifier: "SchedulePage", description: "Schedules in name order" })

export const SchedulePauseRequest = Schema.Struct({
  reason: Schema.optionalKey(PauseReason),
  by: Schema.optionalKey(PausedBy)
}).annotate({
  identifier: "SchedulePauseRequest",
  description: "Optional: why, and who. Pausing a paused schedule keeps its reason unless a new one is given"
})

export const SchedulePaused = Schema.Struct({
  outcome: Schema.Literals(["paused", "already_paused"]),
  message: Schema.String,
  schedule: ScheduleInfo
}).annotate({ identifier: "SchedulePaused" })

export const ScheduleResumed = Schema.Struct({
  outcome: Schema.Literals(["resumed", "not_paused"]),
  message: Schema.String,
  schedule: ScheduleInfo
}).annotate({ identifier: "ScheduleResumed" })

export const ScheduleDeleted = Schema.Struct({
  name: Schema.String,
  deleted: Schema.Literal(true)
}).annotate({ identifier: "ScheduleDeleted" })

export const ScheduleTriggered = Schema.Struct({
  jobId: Schema.String.annotate({ description: "The job enqueued now" }),
  schedule: ScheduleInfo
})
  .annotate({ identifier: "ScheduleTriggered" })
  .pipe(HttpApiSchema.status(201))

export const SchedulesGroup = HttpApiGroup.make("schedules")
  .add(
    HttpApiEndpoint.get("listSchedules", "/schedules", {
      query: ListSchedulesQuery,
      success: SchedulePage,
      error: [ValidationFailed, ...always]
    }).annotate(OpenApi.Summary, "Cron schedules with their next fire times and last run"),
    HttpApiEndpoint.post("defineSchedule", "/schedules", {
      payload: ScheduleDefinition,
      success: ScheduleInfo,
      error: [...withBody, ...always]
    })
      .annotate(HttpApi.PayloadParseOptions, strict)
      .annotate(
        OpenApi.Summary,
        "Create a schedule, or replace the one of that name (its pause stays; a new expression counts from now)"
      ),
    HttpApiEndpoint.get("getSchedule", "/schedules/:name", {
      params: ScheduleNameParams,
      success: ScheduleInfo,
      error: [ScheduleNotFound, ValidationFailed, ...always]
    }).annotate(OpenApi.Summary, "One schedule"),
    HttpApiEndpoint.patch("changeSchedule", "/schedules/:name", {
      params: ScheduleNameParams,
      payload: ScheduleChange,
      success: ScheduleInfo,
      error: [ScheduleNotFound, ...withBody, ...always]
    })
      .annotate(HttpApi.PayloadParseOptions, strict)
      .annotate(OpenApi.Summary, "Change some fields of a schedule; the result is checked like a new one"),
    HttpApiEndpoint.delete("deleteSchedule", "/schedules/:name", {
      params: ScheduleNameParams,
      success: ScheduleDeleted,
      error: [ScheduleNotFound, ValidationFailed, ...always]
    }).annotate(
      OpenApi.Summary,
      "Delete a schedule (its jobs stay; one defined in code comes back at the next worker start)"
    ),
    HttpApiEndpoint.post("pauseSchedule", "/schedules/:name/pause", {
      params: ScheduleNameParams,
      // an empty body reads as null: `reason` and `by` are optional, and so is the body
      payload: [SchedulePauseRequest, Schema.Null],
      success: SchedulePaused,
      error: [ScheduleNotFound, ...withBody, ...always]
    })
      .annotate(HttpApi.PayloadParseOptions, strict)
      .annotate(OpenApi.Summary, "Pause a schedule: its slots do not fire until it is resumed"),
    HttpApiEndpoint.post("resumeSchedule", "/schedules/:name/resume", {
      params: ScheduleNameParams,
      success: ScheduleResumed,
      error: [ScheduleNotFound, ValidationFailed, ...always]
    }).annotate(OpenApi.Summary, "Resume a schedule from now on; the slots of the pause are not caught up"),
    HttpApiEndpoint.post("triggerSchedule", "/schedules/:name/trigger", {
      params: ScheduleNameParams,
      success: ScheduleTriggered,
      error: [ScheduleNotFound, ValidationFailed, ...always]
    }).annotate(OpenApi.Summary, "Enqueue one run of the schedule now (paused or not), outside any slot")
  )
  .annotate(OpenApi.Description, "Cron schedules: define, pause, resume, trigger; see docs/schedules.md")
