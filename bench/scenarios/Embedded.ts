/**
 * Issue 7, the zero-setup mode: `npm start` (`bun run src/dev.ts`, the API and a worker in one process)
 * on the embedded Postgres (PGlite, a fresh temporary PGLITE_DATA_DIR each run) beside the same command on
 * the local server (DATABASE_URL at a fresh, empty database each run). Each run starts the service on the
 * fresh store (which it migrates), stops it, starts it again on the store it left, and drains a backlog of
 * no-op jobs through the HTTP API (HttpDrain) with WORKER_CONCURRENCY=32 and WORKER_PREFETCH=500.
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as BenchDatabase from "../BenchDatabase.ts"
import * as DevProcess from "../DevProcess.ts"
import { decimal, integer, medianRange, table } from "../Markdown.ts"
import type { Context, Section } from "../Scenario.ts"
import { summarize } from "../Stats.ts"
import * as HttpDrain from "./HttpDrain.ts"

interface ModeRuns {
  readonly freshStart: Array<number>
  readonly existingStart: Array<number>
  readonly drain: Array<number>
  readonly enqueue: Array<number>
}

const workerEnv = { WORKER_CONCURRENCY: "32", WORKER_PREFETCH: "500" }

/** One run on one store: fresh start, stop, start on what it left, drain, stop. */
const once = async (
  storage: DevProcess.Storage,
  label: string,
  backlog: number,
  runs: ModeRuns,
  context: Context
) => {
  const fresh = await DevProcess.start(storage, `${label}-fresh`, workerEnv)
  await fresh.stop()
  const again = await DevProcess.start(storage, `${label}-existing`, workerEnv)
  try {
    const drain = await HttpDrain.run(again.baseUrl, { backlog })
    runs.freshStart.push(fresh.startSeconds)
    runs.existingStart.push(again.startSeconds)
    runs.drain.push(drain.jobsPerSecond)
    runs.enqueue.push(drain.enqueuePerSecond)
    context.log(
      `${label}: start ${decimal(fresh.startSeconds)} s fresh, ${decimal(again.startSeconds)} s existing; drain ${integer(drain.jobsPerSecond)} jobs/s; batch enqueue ${integer(drain.enqueuePerSecond)} jobs/s`
    )
  } finally {
    await again.stop()
  }
}

const emptyRuns = (): ModeRuns => ({ freshStart: [], existingStart: [], drain: [], enqueue: [] })

export const run = async (context: Context): Promise<Section> => {
  const backlog = context.quick ? 2_000 : 10_000
  const embedded = emptyRuns()
  const server = emptyRuns()
  for (let r = 0; r < context.runs; r++) {
    const dataDirectory = await mkdtemp(`${tmpdir()}/jobq-bench-pglite-`)
    try {
      await once({ _tag: "embedded", dataDirectory }, `embedded-${r}`, backlog, embedded, context)
    } finally {
      await rm(dataDirectory, { recursive: true, force: true })
    }
    await BenchDatabase.using(
      "embedded_server",
      (db) => once({ _tag: "server", databaseUrl: db.url }, `embedded-server-${r}`, backlog, server, context),
      "empty"
    )
  }

  const seconds = (values: ReadonlyArray<number>) => `${medianRange(summarize(values), decimal)} s`
  const rate = (values: ReadonlyArray<number>) => `${medianRange(summarize(values))} jobs/s`
  const freshStart = summarize(embedded.freshStart).median
  const existingStart = summarize(embedded.existingStart).median
  const drain = summarize(embedded.drain).median
  const markdown = [
    `\`npm start\` (\`bun run src/dev.ts\`: API and worker in one process, WORKER_CONCURRENCY=32, WORKER_PREFETCH=500), ${context.runs} runs each, median (min – max), embedded and server runs alternating. Start time: spawn to the first 2xx from \`/health\`, on a fresh store (migrations included) and again on the store the first start left. Drain: ${integer(backlog)} no-op jobs enqueued by \`POST /jobs/batch\` (1,000 a request) with one shared \`runAt\` ahead, so the worker starts on a complete backlog; timed from the first claim to the last completion, both stamped by the service's database and read back through \`GET /jobs\` (the embedded database cannot be queried from outside). The batch enqueue rate is the same requests', with the worker idle.${context.quick ? ` Quick mode: ${integer(backlog)} jobs instead of 10,000.` : ""}`,
    "",
    table(
      ["", "embedded (PGlite)", "server (local Postgres 15)"],
      [
        ["start, fresh store", seconds(embedded.freshStart), seconds(server.freshStart)],
        ["start, existing store", seconds(embedded.existingStart), seconds(server.existingStart)],
        ["drain, no-op jobs", rate(embedded.drain), rate(server.drain)],
        ["`POST /jobs/batch`", rate(embedded.enqueue), rate(server.enqueue)]
      ]
    ),
    "",
    `Targets (embedded): start under 5 s: **${Math.max(freshStart, existingStart) < 5 ? "met" : "missed"}** (${decimal(freshStart)} s fresh, ${decimal(existingStart)} s existing); at least 1,000 no-op jobs/s: **${drain >= 1000 ? "met" : "missed"}** (${integer(drain)} jobs/s).`
  ].join("\n")
  return { title: "Zero-setup mode: embedded vs server", markdown }
}
