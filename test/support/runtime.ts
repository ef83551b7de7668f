/** A runtime with the queue's services on a test database, and a deadline-bound wait on database state. */
import { afterAll } from "bun:test"
import { type Effect, Layer, ManagedRuntime } from "effect"
import * as Database from "../../src/db/Database.ts"
import type { JobKind } from "../../src/domain/JobKind.ts"
import { demoKinds } from "../../src/kinds/DemoKinds.ts"
import * as QueueLayer from "../../src/queue/layer.ts"
import * as Worker from "../../src/worker/index.ts"
import { freshDatabase, type TestDatabase } from "./database.ts"

export const queueRuntime = (url: string, kinds: ReadonlyArray<JobKind> = demoKinds) =>
  ManagedRuntime.make(
    QueueLayer.layer(kinds).pipe(Layer.provideMerge(Database.layerUrl(url, { maxConnections: 20 })))
  )

/** A fresh database and a queue runtime on it for one test file; both are torn down after its tests. */
export const setupQueueTests = async (file: string, kinds: ReadonlyArray<JobKind> = demoKinds) => {
  const db: TestDatabase = await freshDatabase(file)
  const runtime = queueRuntime(db.url, kinds)
  afterAll(async () => {
    await runtime.dispose()
    await db.drop()
  })
  const run = <A, E>(
    effect: Effect.Effect<A, E, Layer.Success<ReturnType<typeof QueueLayer.layer>> | Database.Sql>
  ) => runtime.runPromise(effect)
  return { db, runtime, run }
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs` naming `what`. */
export const waitFor = async <A>(
  what: string,
  check: () => Promise<A | undefined>,
  { timeoutMs = 10_000, intervalMs = 20 } = {}
): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await Bun.sleep(intervalMs)
  }
}

/**
 * A fresh database, a worker pool running `kinds` (concurrency 4, renewals every 200 ms, polls rare enough
 * that pickups come from NOTIFY) and the queue on it, for one test file; torn down after its tests.
 */
export const setupWorkerTests = async (
  file: string,
  kinds: ReadonlyArray<JobKind>,
  applicationName: string
) => {
  const db: TestDatabase = await freshDatabase(file)
  const runtime = ManagedRuntime.make(
    Layer.mergeAll(
      Worker.layer({
        kinds,
        settings: { concurrency: 4, pollInterval: "5 seconds", renewInterval: "200 millis" }
      }),
      QueueLayer.layer(kinds)
    ).pipe(Layer.provideMerge(Database.layerUrl(db.url, { applicationName })))
  )
  afterAll(async () => {
    await runtime.dispose()
    await db.drop()
  })
  return { db, runtime }
}
