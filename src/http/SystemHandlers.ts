/**
 * The `system` group's handlers: `/health` asks the database, `/metrics` scrapes the Prometheus exporter
 * after sampling the database pool and the requests waiting for jobs.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Metric, Option } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { SqlClient } from "effect/sql"
import * as Health from "../db/Health.ts"
import { EventFeed } from "../queue/EventFeed.ts"
import { Waiters } from "../queue/Waiters.ts"
import { dbConnections, dbPoolMax, eventFollowers, jobWaiters } from "../telemetry/ApiMetrics.ts"
import { Prometheus } from "../telemetry/Prometheus.ts"
import type { JobqApi } from "./Api.ts"
import { DatabaseUnavailable } from "./Problems.ts"

export const makeSystemHandlers = (api: JobqApi) =>
  HttpApiBuilder.group(
    api,
    "system",
    Effect.fn(function* (handlers) {
      // any SQL driver: the pool size is known only for the Postgres pool (the embedded one has one connection)
      const sql = yield* SqlClient.SqlClient
      const pg = yield* Effect.serviceOption(PgClient.PgClient)
      const prometheus = yield* Prometheus
      const waiters = yield* Waiters
      const feed = yield* EventFeed
      const poolMax = Option.match(pg, {
        onNone: () => 1,
        onSome: (client) => (client.config as { readonly maxConnections?: number }).maxConnections ?? 10
      })

      const health = Health.probe(sql).pipe(
        Effect.mapError((down) => new DatabaseUnavailable({ detail: down.reason })),
        Effect.as({ status: "ok", database: "up" } as const)
      )

      /** Connections Postgres sees from this application_name, by state; skipped when it does not answer. */
      const samplePool = Effect.gen(function* () {
        yield* Metric.update(dbPoolMax, poolMax)
        const rows = yield* sql<{ state: string | null; count: number }>`
          SELECT coalesce(state, 'unknown') AS state, count(*)::integer AS count
          FROM pg_stat_activity
          WHERE application_name = current_setting('application_name') AND datname = current_database()
          GROUP BY 1`
        const states = new Map(rows.map((r) => [r.state ?? "unknown", r.count]))
        for (const state of ["active", "idle", "idle in transaction"])
          states.set(state, states.get(state) ?? 0)
        yield* Effect.forEach(
          states,
          ([state, count]) => Metric.update(Metric.withAttributes(dbConnections, { state }), count),
          { discard: true }
        )
      }).pipe(
        Effect.timeout("1 second"),
        Effect.catchCause((cause) => Effect.logDebug("metrics: pool sample skipped", cause))
      )

      return handlers.handleAll({
        health: () => health,
        metrics: () =>
          Effect.flatMap(waiters.size, (n) => Metric.update(jobWaiters, n)).pipe(
            Effect.andThen(Effect.flatMap(feed.size, (n) => Metric.update(eventFollowers, n))),
            Effect.andThen(samplePool),
            Effect.andThen(prometheus.scrape)
          )
      })
    })
  )
