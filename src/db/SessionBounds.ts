/**
 * How a pool's sessions get their `statement_timeout` and `lock_timeout` (the API relies on them: a
 * statement it sent is never given up on, Postgres ends it; docs/api.md, "503 vs 500").
 *
 * Straight to Postgres they are startup parameters: every session of the pool starts with them, so bounding
 * a statement costs no round trip. A pooler (PgBouncer) refuses startup parameters it does not track
 * ("unsupported startup parameter"), and in transaction mode a `SET` would stay on whichever server session
 * ran it. Behind one the bounds must be the server's own settings for the role or database (`ALTER ROLE ...
 * SET statement_timeout`), which the pooler's sessions log in with; the pool reads them back when it opens
 * and refuses to start when they are missing or looser than the program's, rather than run unbounded.
 */
import { Duration, Effect } from "effect"
import type { SqlClient } from "effect/sql"
import { invalidSetting, type Pooler } from "../Config.ts"

export interface Bounds {
  readonly statementTimeout?: Duration.Input | undefined
  readonly lockTimeout?: Duration.Input | undefined
}

/** The bounds in whole milliseconds, Postgres's unit for both; none for an unset or zero one. */
const millis = (bounds: Bounds) => {
  const ms = (value: Duration.Input | undefined) => {
    if (value === undefined) return undefined
    const n = Math.ceil(Duration.toMillis(Duration.fromInputUnsafe(value)))
    return n > 0 ? n : undefined
  }
  return { statement_timeout: ms(bounds.statementTimeout), lock_timeout: ms(bounds.lockTimeout) }
}

/** The startup parameters that carry the bounds, when nothing stands between the pool and Postgres. */
export const startupParameters = (bounds: Bounds, pooler: Pooler) => {
  if (pooler !== "none") return {}
  const parameters: Record<string, string> = {}
  for (const [name, ms] of Object.entries(millis(bounds))) if (ms !== undefined) parameters[name] = String(ms)
  return Object.keys(parameters).length === 0 ? {} : { startupParameters: parameters }
}

const variables = { statement_timeout: "DATABASE_STATEMENT_TIMEOUT", lock_timeout: "DATABASE_LOCK_TIMEOUT" }

/**
 * Behind a pooler: fails (a setting the program cannot run with) unless the server gives the pool's
 * sessions each bound, at most as long as asked. Straight to Postgres there is nothing to check.
 */
export const verify = (sql: SqlClient.SqlClient, bounds: Bounds, pooler: Pooler) =>
  Effect.gen(function* () {
    const wanted = millis(bounds)
    if (pooler === "none" || (wanted.statement_timeout ?? wanted.lock_timeout) === undefined) return
    const rows = yield* sql<{ name: keyof typeof wanted; setting: string; role: string }>`
      SELECT name, setting, current_user AS role FROM pg_settings
      WHERE name IN ('statement_timeout', 'lock_timeout') ORDER BY name DESC`
    const missing = rows.flatMap((row) => {
      const want = wanted[row.name]
      const has = Number(row.setting)
      return want === undefined || (has > 0 && has <= want) ? [] : [{ ...row, want, has }]
    })
    if (missing.length === 0) return
    const role = missing[0]!.role
    return yield* invalidSetting(
      `DATABASE_POOLER=${pooler}: the pooler passes no statement bounds to Postgres, so the server must set ` +
        `them, but the sessions of role ${JSON.stringify(role)} have ` +
        missing
          .map(
            (m) =>
              `${m.name} = ${m.has === 0 ? "0 (none)" : `${m.has}ms`} where ${variables[m.name]} asks for ${m.want}ms`
          )
          .join(", and ") +
        `. Set them for that role (${missing.map((m) => `ALTER ROLE "${role}" SET ${m.name} = '${m.want}ms'`).join("; ")}), ` +
        `or set ${missing.map((m) => `${variables[m.name]}=0`).join(" and ")} to run without ` +
        "(docs/runbook.md, Behind a connection pooler)"
    )
  })
