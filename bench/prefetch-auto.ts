/**
 * Drain of 20,000 no-op jobs by one worker process: the former default claim buffer (max(concurrency, 32),
 * labelled "default"), `WORKER_PREFETCH=auto` (the default since it measured within 10% of 500) and
 * `WORKER_PREFETCH=500`, taken in turn within each round
 * (paired, alternating), at concurrency 8 and 32, timed as in the drain scenario (bench/scenarios/OurDrain.ts).
 * Run: `bun bench/prefetch-auto.ts` (PREFETCH_ROUNDS, default 3; PREFETCH_CONCURRENCY, default 8,32).
 */
import * as BenchDatabase from "./BenchDatabase.ts"
import * as OurDrain from "./scenarios/OurDrain.ts"

const rounds = Number(process.env.PREFETCH_ROUNDS ?? 3)
const settings = { default: "32", auto: "auto", "500": "500" } as const
await BenchDatabase.using("prefetch", async (db) => {
  for (const concurrency of (process.env.PREFETCH_CONCURRENCY ?? "8,32").split(",").map(Number)) {
    const results: Record<string, Array<number>> = {}
    for (let round = 0; round < rounds; round++) {
      for (const [label, prefetch] of Object.entries(settings)) {
        const env = { WORKER_PREFETCH: label === "default" ? String(Math.max(concurrency, 32)) : prefetch }
        const { jobsPerSecond } = await OurDrain.run(
          db,
          { backlog: 20_000, concurrency, processes: 1, env },
          `prefetch-${label}-c${concurrency}-${round}`
        )
        results[label] = [...(results[label] ?? []), Math.round(jobsPerSecond)]
        console.log(JSON.stringify({ concurrency, round, label, jobsPerSecond: Math.round(jobsPerSecond) }))
      }
    }
    const ratio = (a: string, b: string) =>
      results[a]!.map((x, i) => (x / results[b]![i]!).toFixed(2)).join(", ")
    console.log(
      JSON.stringify({
        concurrency,
        results,
        autoOverDefault: ratio("auto", "default"),
        autoOver500: ratio("auto", "500"),
        defaultOver500: ratio("default", "500")
      })
    )
  }
})
