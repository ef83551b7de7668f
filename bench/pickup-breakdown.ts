/**
 * Where an idle worker's pickup time goes: the pickup scenario's probe (stamp jobs, one `Queue.enqueue` at a
 * time at 50/s, one worker process at concurrency 8, defaults), each job split at the moments the database
 * and the processes recorded: the enqueue call's return (harness), the claim's transaction start (the row's
 * `started_at`, `now()` of the claim) and the handler's start (the job's result). All on the system clock.
 *
 *   bun bench/pickup-breakdown.ts        (PICKUP_JOBS, default 1,000)
 *
 * Prints one JSON line: p50/p90/p99 of each part and of the whole, in ms.
 */
import { Queue } from "../src/queue/Queue.ts"
import * as BenchDatabase from "./BenchDatabase.ts"
import { modulePath, now } from "./BenchKinds.ts"
import * as QueueClient from "./QueueClient.ts"
import { waitAllDone } from "./scenarios/Pickup.ts"
import * as WorkerProcess from "./WorkerProcess.ts"

const jobs = Number(process.env.PICKUP_JOBS ?? 1000)
const perSecond = 50
const quantile = (values: ReadonlyArray<number>, q: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return Number((sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN).toFixed(2))
}
const summary = (values: ReadonlyArray<number>) => ({
  p50: quantile(values, 0.5),
  p90: quantile(values, 0.9),
  p99: quantile(values, 0.99),
  max: quantile(values, 1)
})

const result = await BenchDatabase.using("pickup_breakdown", async (db) => {
  const worker = WorkerProcess.spawn(db.url, "pickup-breakdown", {
    WORKER_CONCURRENCY: "8",
    JOBS_MODULE: modulePath
  })
  const client = QueueClient.make(db.url, 2)
  try {
    const enqueue = () =>
      client.runPromise(Queue.use((queue) => queue.enqueue({ kind: "stamp", payload: {} })))
    const paced = async (n: number) => {
      const times = new Map<string, { began: number; returned: number }>()
      const t0 = now()
      for (let i = 0; i < n; i++) {
        const wait = t0 + (i * 1000) / perSecond - now()
        if (wait > 0) await Bun.sleep(wait)
        const began = now()
        const { job } = await enqueue()
        times.set(job.id, { began, returned: now() })
      }
      await waitAllDone(db, [...times.keys()], 60_000)
      return times
    }
    await paced(101)
    const times = await paced(jobs)
    const rows: Array<{
      id: string
      result: { handlerStartedAt: number }
      claimed: number
      created: number
    }> = await db.sql`
        SELECT id::text AS id, result, extract(epoch FROM started_at)::float8 * 1000 AS claimed,
               extract(epoch FROM created_at)::float8 * 1000 AS created
        FROM jobs WHERE id = ANY(${[...times.keys()]}::uuid[])`
    const parts = rows.map((row) => {
      const t = times.get(row.id)!
      return {
        enqueueCall: t.returned - t.began,
        insertStartToReturn: t.returned - Number(row.created),
        returnToClaim: Number(row.claimed) - t.returned,
        claimToHandler: row.result.handlerStartedAt - Number(row.claimed),
        total: row.result.handlerStartedAt - t.began
      }
    })
    const pick = (k: keyof (typeof parts)[number]) => summary(parts.map((p) => p[k]))
    return {
      jobs,
      enqueueCall: pick("enqueueCall"),
      insertStartToReturn: pick("insertStartToReturn"),
      returnToClaim: pick("returnToClaim"),
      claimToHandler: pick("claimToHandler"),
      total: pick("total")
    }
  } finally {
    await client.dispose()
    await worker.stop()
  }
})
console.log(JSON.stringify(result))
process.exit(0)
