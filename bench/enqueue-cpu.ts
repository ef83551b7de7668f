/**
 * Where `Queue.enqueueMany`'s time goes: 20,000 no-op jobs in calls of 1,000 (as the bulk enqueue scenario
 * sends them), ENQUEUE_ROUNDS rounds (default 5) on a fresh table each, timing the wall clock and the CPU of
 * the harness process (`process.cpuUsage`: preparing the rows, encoding the statement, decoding the answer)
 * and of the database's backends (/proc, bench/ProcessCpu.ts: the insert, its indexes, triggers and
 * constraints, the commit). Per job, in microseconds. Run: `bun bench/enqueue-cpu.ts`.
 */
import { Effect } from "effect"
import { Queue } from "../src/queue/Queue.ts"
import * as BenchDatabase from "./BenchDatabase.ts"
import * as ProcessCpu from "./ProcessCpu.ts"
import * as QueueClient from "./QueueClient.ts"

const rounds = Number(process.env.ENQUEUE_ROUNDS ?? 5)
const jobs = 20_000
const perCall = Number(process.env.ENQUEUE_PER_CALL ?? 1000)

await BenchDatabase.using("enqueuecpu", async (db) => {
  const client = QueueClient.make(db.url, 4)
  const admin = BenchDatabase.admin()
  try {
    const queue = await client.runPromise(
      Effect.gen(function* () {
        return yield* Queue
      })
    )
    const batch = () => Array.from({ length: perCall }, () => ({ kind: "noop", payload: {} }))
    await client.runPromise(queue.enqueueMany(batch())) // warm-up: connections, plans, JIT
    for (let round = 0; round < rounds; round++) {
      await db.sql`TRUNCATE jobs`
      const inputs = Array.from({ length: jobs / perCall }, batch)
      const postgres = ProcessCpu.postgresWindow(admin, db.name)
      await postgres.start()
      const cpu = process.cpuUsage()
      const t = performance.now()
      for (const input of inputs) await client.runPromise(queue.enqueueMany(input))
      const wallMs = performance.now() - t
      const used = process.cpuUsage(cpu)
      const pgSeconds = await postgres.end()
      const us = (x: number) => Number(x.toFixed(1))
      console.log(
        JSON.stringify({
          round,
          jobsPerSecond: Math.round(jobs / (wallMs / 1000)),
          wallUsPerJob: us((wallMs * 1000) / jobs),
          harnessUsPerJob: us((used.user + used.system) / jobs),
          postgresUsPerJob: us((pgSeconds * 1e6) / jobs)
        })
      )
    }
  } finally {
    await client.dispose()
    await admin.close()
  }
})
