/**
 * Kinds for the chaos suites (JOBS_MODULE points here): `record` from test/fixtures/recordingKinds.ts, and
 * `record_flaky`, which fails its first `failTimes` attempts and records only the attempt that succeeds, so
 * `processed_log` counts completions and a duplicate completion shows as a second row.
 */
import { SQL } from "bun"
import { Effect, Schema } from "effect"
import { defineKind } from "../../src/domain/JobKind.ts"
import { kinds as recordingKinds } from "../fixtures/recordingKinds.ts"

let db: SQL | undefined
const connection = () => {
  db ??= new SQL(process.env.DATABASE_URL!)
  return db
}

export const recordFlaky = defineKind({
  name: "record_flaky",
  payload: Schema.Struct({ sleepMs: Schema.Int, failTimes: Schema.Int }),
  handler: ({ sleepMs, failTimes }, { job, attempt }) =>
    Effect.sleep(sleepMs).pipe(
      Effect.andThen(
        attempt <= failTimes
          ? Effect.fail(new Error(`planned failure ${attempt} of ${failTimes}`))
          : Effect.promise(
              () =>
                connection()`INSERT INTO processed_log (job_id, worker) VALUES (${job.id}, ${process.env.WORKER_ID ?? "?"})`
            )
      ),
      Effect.as({ attempt })
    )
})

export const kinds = [...recordingKinds, recordFlaky]
