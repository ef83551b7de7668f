/**
 * Issue 5, the cost of tracing: our worker (one process, concurrency 32, WORKER_PREFETCH=500) drains the
 * same backlog with tracing off (no OTEL_* variables: no spans at all), on (OTEL_EXPORTER_OTLP_ENDPOINT at
 * a tiny OTLP/HTTP receiver in the harness, default batch span processor settings), and on with one trace
 * in ten sampled, timed after a warm-up. For every run index the three are measured back to back, in
 * rotating order, and the overhead is taken run by run. Spans are counted after the worker has stopped, so
 * the exporter's final flush is included.
 */
import * as BenchDatabase from "../BenchDatabase.ts"
import { decimal, integer, medianRange, table } from "../Markdown.ts"
import * as OtlpReceiver from "../OtlpReceiver.ts"
import type { Context, Section } from "../Scenario.ts"
import { summarize } from "../Stats.ts"
import * as OurDrain from "./OurDrain.ts"

const concurrency = 32

/** Off; on, every span exported; on, with one trace in ten sampled (`traceidratio` 0.1). */
type Mode = "off" | "on" | "ratio"

export const run = async (context: Context): Promise<Section> => {
  // Timed after a warm-up: a worker runs for hours, and JSC compiles the traced path for the first tens of
  // thousands of jobs (a 20,000-job drain from a fresh process measured 32% where the steady state is 23-30%).
  const warmUp = context.quick ? 10_000 : 40_000
  const measured = context.quick ? 10_000 : 40_000
  const backlog = warmUp + measured
  const off: Array<number> = []
  const on: Array<number> = []
  const ratio: Array<number> = []
  const spans: Array<number> = []
  const executeSpans: Array<number> = []
  const receiver = OtlpReceiver.start()
  try {
    await BenchDatabase.using("tracing", async (db) => {
      const drain = async (mode: Mode, r: number) => {
        receiver.reset()
        const env: Record<string, string> =
          mode === "off"
            ? {}
            : {
                OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
                OTEL_SERVICE_NAME: "jobq-bench-worker",
                ...(mode === "ratio"
                  ? { OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.1" }
                  : {})
              }
        const result = await OurDrain.run(
          db,
          { backlog, warmUp, measure: measured, concurrency, processes: 1, env },
          `tracing-${mode}-${r}`
        )
        ;({ off, on, ratio })[mode].push(result.jobsPerSecond)
        if (mode === "on") {
          spans.push(receiver.total())
          executeSpans.push(receiver.spans().get("jobq.job.execute") ?? 0)
        }
        context.log(
          `tracing ${mode} run ${r + 1}: ${integer(result.jobsPerSecond)} jobs/s${mode === "off" ? "" : `, ${integer(receiver.total())} spans received (${integer(receiver.spans().get("jobq.job.execute") ?? 0)} jobq.job.execute)`}`
        )
      }
      const modes: ReadonlyArray<Mode> = ["off", "on", "ratio"]
      for (let r = 0; r < context.runs; r++) {
        // rotate the order, so that no mode always runs first
        for (let i = 0; i < modes.length; i++) await drain(modes[(i + r) % modes.length]!, r)
      }
    })
  } finally {
    receiver.stop()
  }

  const overheadOf = (traced: ReadonlyArray<number>) =>
    summarize(off.map((o, i) => (1 - traced[i]! / o) * 100))
  const overhead = overheadOf(on)
  const ratioOverhead = overheadOf(ratio)
  const percent = (n: number) => `${decimal(n, 1)}%`
  const markdown = [
    `Our worker, one process, concurrency ${concurrency}, WORKER_PREFETCH=500, a ${integer(backlog)}-job no-op backlog drained as in the drain scenario but timed in the steady state: from the ${integer(warmUp)}th completion to the ${integer(backlog)}th (JSC compiles the traced path for the first tens of thousands of jobs; a worker runs for hours); ${context.runs} rounds of the three runs, median (min – max). Tracing on: OTLP over HTTP (JSON) to a receiver in the harness process on 127.0.0.1 that answers every export at once and counts its spans by scanning the body rather than parsing it (it stands in for a collector on another machine, so it takes as little as it can of the cores the worker and Postgres share); the batch span processor keeps its defaults (no OTEL_BSP_* set). A \`jobq.job.execute\` count below the backlog means spans were dropped.${context.quick ? ` Quick mode: ${integer(backlog)} jobs instead of 80,000.` : ""}`,
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
        ],
        [
          "on, `OTEL_TRACES_SAMPLER=traceidratio`, `OTEL_TRACES_SAMPLER_ARG=0.1`",
          medianRange(summarize(ratio)),
          "",
          ""
        ]
      ]
    ),
    "",
    `Overhead (1 − on ÷ off, run by run), every span exported: ${percent(overhead.median)} (${percent(overhead.min)} – ${percent(overhead.max)}). Target under 15%: **${overhead.median < 15 ? "met" : "missed"}**. With one trace in ten sampled: ${percent(ratioOverhead.median)} (${percent(ratioOverhead.min)} – ${percent(ratioOverhead.max)}).`
  ].join("\n")
  return { title: "Tracing overhead", markdown }
}
