/** The pieces RESULTS.md is written with: tables and number formats. */
import type { Summary } from "./Stats.ts"

export const table = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>) =>
  [
    `| ${headers.join(" | ")} |`,
    `| ${headers.map((_, i) => (i === 0 ? "---" : "---:")).join(" | ")} |`,
    ...rows.map((row) => `| ${row.join(" | ")} |`)
  ].join("\n")

export const integer = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "n/a")

export const decimal = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a")

/** "12,345 (11,000 – 13,000)": the median and the range of the runs. */
export const medianRange = (s: Summary, format: (n: number) => string = integer) =>
  `${format(s.median)} (${format(s.min)} – ${format(s.max)})`

export const ratio = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)}x` : "n/a")
