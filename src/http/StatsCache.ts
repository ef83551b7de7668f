/**
 * The overview's statistics, computed at most once per `API_STATS_INTERVAL` by this API process and shared
 * by every caller: ten dashboards polling every second cost the database one computation per interval.
 * Concurrent callers during a computation wait for it rather than starting their own; a failure is not
 * kept (the next caller tries again).
 */
import { Effect, Exit } from "effect"
import { SqlClient } from "effect/sql"
import { ApiConfig } from "../Config.ts"
import * as Stats from "../queue/Stats.ts"

export const make = Effect.gen(function* () {
  const { statsInterval, statsStatementTimeout } = yield* ApiConfig
  const sql = yield* SqlClient.SqlClient
  return yield* Stats.compute(statsStatementTimeout).pipe(
    Effect.provideService(SqlClient.SqlClient, sql),
    Effect.cachedWithTTL((exit) => (Exit.isSuccess(exit) ? statsInterval : 0))
  )
})
