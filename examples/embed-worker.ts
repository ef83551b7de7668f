/**
 * Run the worker pool inside your own program, with your own job kinds.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bun examples/embed-worker.ts
 *
 * It migrates, starts a pool of 4 fibers, enqueues three `send_welcome_email` jobs, waits for them to
 * succeed, prints their results and exits (closing the layer drains the pool).
 */
import { Duration, Effect, Layer, Schema } from "effect"
import { Database, defineKind, Migrator, Queue, QueueLayer } from "../src/index.ts"
import * as Worker from "../src/worker/index.ts"

const sendWelcomeEmail = defineKind({
  name: "send_welcome_email",
  description: "Pretends to send a welcome email.",
  payload: Schema.Struct({ to: Schema.String.pipe(Schema.check(Schema.isPattern(/^[^@\s]+@[^@\s]+$/))) }),
  maxAttempts: 3,
  timeout: "10 seconds",
  handler: ({ to }, { attempt }) =>
    Effect.logInfo(`sending a welcome email to ${to} (attempt ${attempt})`).pipe(
      Effect.andThen(Effect.sleep("20 millis")),
      Effect.as({ deliveredTo: to })
    )
})

const kinds = [sendWelcomeEmail]

const program = Effect.gen(function* () {
  const queue = yield* Queue
  const jobs = yield* queue.enqueueMany(
    ["ada@example.com", "grace@example.com", "edsger@example.com"].map((to) => ({
      kind: "send_welcome_email",
      payload: { to },
      queue: "emails"
    }))
  )
  const done = yield* Effect.forEach(jobs, ({ job }) =>
    queue
      .get(job.id)
      .pipe(
        Effect.repeat({ until: (j) => j.status === "succeeded" || j.status === "failed_permanent" }),
        Effect.timeout(Duration.seconds(30))
      )
  )
  for (const job of done) console.log(`${job.id} ${job.status} ${JSON.stringify(job.result)}`)
  console.log(`${done.filter((j) => j.status === "succeeded").length} jobs succeeded`)
})

const AppLive = Layer.mergeAll(
  Worker.layer({ kinds, settings: { concurrency: 4, queues: ["emails"] } }),
  QueueLayer.layer(kinds)
).pipe(
  Layer.provide(Layer.effectDiscard(Migrator.migrate())),
  Layer.provideMerge(Database.layerFromEnv("embed-worker-example"))
)

Effect.runPromise(program.pipe(Effect.provide(AppLive))).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
