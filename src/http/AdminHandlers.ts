/**
 * The `admin` group's handlers: statistics from the shared cache, delete, run now, one batch of a bulk
 * action, and bulk operations (run by this process's `BulkOperations`, which the group's layer provides).
 */
import { Effect, Layer } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import type { JobId } from "../domain/Job.ts"
import { type BulkOperation, BulkOperations } from "../queue/BulkOperations.ts"
import { defaultBulkBatch, JobAdmin } from "../queue/JobAdmin.ts"
import { type BulkFilter, BulkOperationNotFound, TooManyBulkOperations } from "./AdminApi.ts"
import type { JobqApi } from "./Api.ts"
import * as DatabaseAdmission from "./DatabaseAdmission.ts"
import { JobNotFound, JobStateConflict } from "./Problems.ts"
import * as StatsCache from "./StatsCache.ts"

const shown = (operation: BulkOperation) => ({
  ...operation,
  // stored without undefined keys (BulkOperations writes only the keys given)
  filter: operation.filter as typeof BulkFilter.Type,
  skipped: operation.matched - operation.acted
})

export const makeAdminHandlers = (api: JobqApi) =>
  HttpApiBuilder.group(
    api,
    "admin",
    Effect.fn(function* (handlers) {
      const admin = yield* JobAdmin
      const operations = yield* BulkOperations
      const operation = (id: string) =>
        operations
          .get(id)
          .pipe(
            Effect.flatMap((found) =>
              found === undefined
                ? Effect.fail(
                    new BulkOperationNotFound({ operationId: id, detail: `no bulk operation ${id}` })
                  )
                : Effect.succeed(shown(found))
            )
          )
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
            ),
        startBulkOperation: ({ payload }) =>
          operations.start(payload.action, payload.filter).pipe(
            database,
            Effect.map(shown),
            Effect.catchTag("TooManyBulkOperations", (e) =>
              Effect.fail(new TooManyBulkOperations({ running: e.running, detail: e.message }))
            )
          ),
        listBulkOperations: () =>
          operations.list.pipe(
            database,
            Effect.map((list) => ({ operations: list.map(shown) }))
          ),
        getBulkOperation: ({ params }) => database(operation(params.id)),
        cancelBulkOperation: ({ params }) =>
          database(operations.cancel(params.id).pipe(Effect.andThen(operation(params.id))))
      })
    })
  ).pipe(Layer.provide(BulkOperations.layer))
