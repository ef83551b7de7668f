/**
 * The `schedules` group's handlers: HTTP in, `ScheduleControl` calls, HTTP out. The rules (the kind and the
 * payload checked at definition, the cursor on a change, pause and resume) live in `ScheduleControl`.
 */
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import type { InvalidSchedule, ScheduleNotFound as NotFound } from "../domain/Schedule.ts"
import { ScheduleControl } from "../queue/ScheduleControl.ts"
import type { JobqApi } from "./Api.ts"
import { orUnavailable } from "./DatabaseErrors.ts"
import { ValidationFailed } from "./Problems.ts"
import { ScheduleNotFound } from "./SchedulesApi.ts"

const notFound = (error: NotFound) =>
  Effect.fail(new ScheduleNotFound({ schedule: error.name, detail: error.message }))

const invalid = (error: InvalidSchedule) =>
  Effect.fail(
    ValidationFailed.of(
      error.issues.map((issue) => ({ path: ["body", ...issue.path], message: issue.message })),
      error.message
    )
  )

export const makeSchedulesHandlers = (api: JobqApi) =>
  HttpApiBuilder.group(
    api,
    "schedules",
    Effect.fn(function* (handlers) {
      const control = yield* ScheduleControl
      return handlers.handleAll({
        listSchedules: ({ query }) => control.list(query).pipe(orUnavailable),

        defineSchedule: ({ payload }) =>
          control
            .define(payload, "api")
            .pipe(
              orUnavailable,
              Effect.catchTags({ InvalidSchedule: invalid, ScheduleNotFound: (e) => Effect.die(e) })
            ),

        getSchedule: ({ params }) =>
          control.get(params.name).pipe(orUnavailable, Effect.catchTag("ScheduleNotFound", notFound)),

        changeSchedule: ({ params, payload }) =>
          control
            .change(params.name, payload)
            .pipe(orUnavailable, Effect.catchTags({ InvalidSchedule: invalid, ScheduleNotFound: notFound })),

        deleteSchedule: ({ params }) =>
          control
            .remove(params.name)
            .pipe(
              Effect.as({ name: params.name, deleted: true as const }),
              orUnavailable,
              Effect.catchTag("ScheduleNotFound", notFound)
            ),

        pauseSchedule: ({ params, payload }) =>
          control
            .pause(params.name, payload ?? {})
            .pipe(orUnavailable, Effect.catchTag("ScheduleNotFound", notFound)),

        resumeSchedule: ({ params }) =>
          control.resume(params.name).pipe(orUnavailable, Effect.catchTag("ScheduleNotFound", notFound)),

        triggerSchedule: ({ params }) =>
          control.trigger(params.name).pipe(orUnavailable, Effect.catchTag("ScheduleNotFound", notFound))
      })
    })
  )
