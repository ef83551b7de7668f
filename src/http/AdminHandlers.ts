/** The `admin` group's handlers: statistics from the shared cache, delete, one batch of a bulk action. */
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import type { JobId } from "../domain/Job.ts"
import { defaultBulkBatch, JobAdmin } from "../queue/JobAdmin.ts"
import type { JobqApi } from "./Api.ts"
import * as DatabaseAdmission from "./DatabaseAdmission.ts"
import { JobNotFound, JobStateConflict } from "./Problems.ts"
import * as StatsCache from "./StatsCache.ts"

export const makeAdminHandlers = (api: JobqApi) =>
  HttpApiBuilder.group(
    api,
    "admin",
    Effect.fn(function* (handlers) {
      const admin = yield* JobAdmin
      const database = yield* DatabaseAdmission.make
      const stats = yield* StatsCache.make
      return handlers.handleAll({
        stats: () => database(stats),
        deleteJob: ({ params }) =>
          admin.remove(params.id).pipe(
            database,
            Effect.as({ deleted: params.id }),
            Effect.catchTags({
              JobNotFound: (e) => Effect.fail(new JobNotFound({ jobId: e.id, detail: e.message })),
              JobStateConflict: (e) =>
                Effect.fail(new JobStateConflict({ jobId: e.id, jobStatus: e.status, detail: e.message }))
            })
          ),
        runNow: ({ params }) =>
          admin.runNow(params.id).pipe(
            database,
            Effect.catchTags({
              JobNotFound: (e) => Effect.fail(new JobNotFound({ jobId: e.id, detail: e.message })),
              JobStateConflict: (e) =>
                Effect.fail(new JobStateConflict({ jobId: e.id, jobStatus: e.status, detail: e.message }))
            })
          ),
        bulk: ({ payload }) =>
          admin
            .bulk({
              action: payload.action,
              filter: payload.filter,
              cursor: payload.cursor,
              batchSize: payload.batchSize ?? defaultBulkBatch
            })
            .pipe(
              database,
              Effect.map((batch) => ({
                action: payload.action,
                matched: batch.matched,
                acted: batch.acted,
                skipped: batch.matched - batch.acted,
                nextCursor: batch.nextCursor as JobId | null,
                done: batch.nextCursor === null
              }))
            )
      })
    })
  )
