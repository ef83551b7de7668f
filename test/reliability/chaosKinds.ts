/**
 * Kinds for the chaos suites (JOBS_MODULE points here), besides the demo kinds. Each run of a job leaves
 * rows through a connection of its own, committed at once whatever becomes of the job, so the verdict
 * (harness.ts) sees every execution:
 *
 * - `record` sleeps `sleepMs`: one `started_log` row when a run begins, one `processed_log` row when it
 *   finishes (its side effect);
 * - `record_flaky` fails its first `failTimes` attempts: a `started_log` row for every attempt, a
 *   `processed_log` row only for the one that succeeds, so a duplicate completion shows as a second row.
 */
import { SQL } from "bun"
import { Effect, Schema } from "effect"
import { defineKind } from "../../src/domain/JobKind.ts"
import { demoKinds } from "../../src/kinds/DemoKinds.ts"

let db: SQL | undefined
const connection = () => {
  db ??= new SQL(process.env.DATABASE_URL!)
  return db
}
const worker = () => process.env.WORKER_ID ?? "?"

const logStart = (jobId: string) =>
  Effect.promise(() => connection()`INSERT INTO started_log (job_id, worker) VALUES (${jobId}, ${worker()})`)
const logFinish = (jobId: string) =>
  Effect.promise(
    () => connection()`INSERT INTO processed_log (job_id, worker) VALUES (${jobId}, ${worker()})`
  )

export const record = defineKind({
  name: "record",
  payload: Schema.Struct({ sleepMs: Schema.Int }),
  handler: ({ sleepMs }, { job }) =>
    logStart(job.id).pipe(
      Effect.andThen(Effect.sleep(sleepMs)),
      Effect.andThen(logFinish(job.id)),
      Effect.as({ pid: process.pid })
    )
})

export const recordFlaky = defineKind({
  name: "record_flaky",
  payload: Schema.Struct({ sleepMs: Schema.Int, failTimes: Schema.Int }),
  handler: ({ sleepMs, failTimes }, { job, attempt }) =>
    logStart(job.id).pipe(
      Effect.andThen(Effect.sleep(sleepMs)),
      Effect.andThen(
        attempt <= failTimes
          ? Effect.fail(new Error(`planned failure ${attempt} of ${failTimes}`))
          : logFinish(job.id)
      ),
      Effect.as({ attempt })
    )
})

export const kinds = [...demoKinds, record, recordFlaky]
