/**
 * Issue 5, the cost of tracing: our worker (one process, concurrency 32, WORKER_PREFETCH=500) drains the
 * same backlog with tracing off (no OTEL_* variables: `Layer.empty`) and on (OTEL_EXPORTER_OTLP_ENDPOINT at
 * a tiny OTLP/HTTP receiver in the harness, default batch span processor settings). For every run index
 * both are measured side by side, in alternating order, and the overhead is taken pair by pair. Spans are
 * counted after the worker has stopped, so the exporter's final flush is included.
 */
import * as BenchDatabase from "../BenchDatabase.ts"
import { decimal, integer, medianRange, table } from "../Markdown.ts"
import * as OtlpReceiver from "../OtlpReceiver.ts"
import type { Context, Section } from "../Scenario.ts"
import { summarize } from "../Stats.ts"
import * as OurDrain from "./OurDrain.ts"

const concurrency = 32

export const run = async (context: Context): Promise<Section> => {
  const backlog = context.quick ? 10_000 : 20_000
  const off: Array<number> = []
  const on: Array<number> = []
  const spans: Array<number> = []
  const executeSpans: Array<number> = []
  const receiver = OtlpReceiver.start()
  try {
    await BenchDatabase.using("tracing", async (db) => {
      const drain = async (traced: boolean, r: number) => {
        receiver.reset()
        const env: Record<string, string> = traced
          ? { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_SERVICE_NAME: "jobq-bench-worker" }
          : {}
        const result = await OurDrain.run(
          db,
          { backlog, concurrency, processes: 1, env },
          `tracing-${traced ? "on" : "off"}-${r}`
        )
        ;(traced ? on : off).push(result.jobsPerSecond)
        if (traced) {
          spans.push(receiver.total())
          executeSpans.push(receiver.spans().get("jobq.job.execute") ?? 0)
        }
        context.log(
          `tracing ${traced ? "on" : "off"} run ${r + 1}: ${integer(result.jobsPerSecond)} jobs/s${traced ? `, ${integer(receiver.total())} spans received (${integer(receiver.spans().get("jobq.job.execute") ?? 0)} jobq.job.execute)` : ""}`
        )
      }
      for (let r = 0; r < context.runs; r++) {
        const order = r % 2 === 0 ? [false, true] : [true, false]
        for (const traced of order) await drain(traced, r)
      }
    })
  } finally {
    receiver.stop()
  }

  const overhead = summarize(off.map((o, i) => (1 - on[i]! / o) * 100))
  const percent = (n: number) => `${decimal(n, 1)}%`
  const markdown = [
    `Our worker, one process, concurrency ${concurrency}, WORKER_PREFETCH=500, a ${integer(backlog)}-job no-op backlog drained as in the drain scenario; ${context.runs} pairs of runs, median (min – max). Tracing on: OTLP over HTTP (JSON) to a receiver in the harness process on 127.0.0.1 that answers every export at once and counts its spans; the batch span processor keeps its defaults (no OTEL_BSP_* set). A \`jobq.job.execute\` count below the backlog means spans were dropped.${context.quick ? ` Quick mode: ${integer(backlog)} jobs instead of 20,000.` : ""}`,
    "",
    table(
      ["tracing", "jobs/s", "spans received a run", "`jobq.job.execute` spans a run"],
      [
        ["off", medianRange(summarize(off)), "", ""],
        [
          "on (OTLP/HTTP)",
          medianRange(summarize(on)),
          medianRange(summarize(spans)),
          `${medianRange(summarize(executeSpans))} of ${integer(backlog)} jobs`
        ]
      ]
    ),
    "",
    `Overhead (1 − on ÷ off, pair by pair): ${percent(overhead.median)} (${percent(overhead.min)} – ${percent(overhead.max)}). Target under 15%: **${overhead.median < 15 ? "met" : "missed"}**.`
  ].join("\n")
  return { title: "Tracing overhead", markdown }
}
