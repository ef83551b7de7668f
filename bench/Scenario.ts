/** What every scenario gets (mode, run count, a log line writer) and what it gives back for RESULTS.md. */

export interface Context {
  readonly quick: boolean
  /** Runs per measured configuration (at least 3). */
  readonly runs: number
  readonly log: (line: string) => void
  /** Whether bench/node_modules holds the peers and Node 22. */
  readonly peersAvailable: boolean
}

/** One point of the drain chart: jobs/s by concurrency for one system. */
export interface ChartPoint {
  readonly system: string
  readonly concurrency: number
  readonly jobsPerSecond: number
}

export interface Section {
  readonly title: string
  readonly markdown: string
  readonly chart?: ReadonlyArray<ChartPoint>
  /** Shared figures other sections cite (e.g. pgbench's single-insert rate). */
  readonly figures?: Readonly<Record<string, number>>
}
