/**
 * `bun run bench/events-budget.ts`: the drain with one `GET /events` follower taking every event, against
 * the drain with none (issue #19's budget: at least 90%). Each pair runs on one database, in alternating
 * order: for the run with a follower an API process is started (`bun src/api.ts`), a client opens
 * `GET /events` and reads everything until the drain ends, then the API stops (releasing the events gate);
 * the run without has no API. The drain is the drain scenario's (OurDrain: one worker process, backlog
 * BACKLOG, default 20,000, concurrency CONCURRENCY, default 8 and 32). Prints each pair, the median of the
 * paired ratios, and how many events the follower received per drained job. GATE_ONLY=1 splits the cost:
 * instead of an API and a follower, a session only holds the events gate (the database writes every event,
 * nobody reads them).
 */
import { SQL } from "bun"
import * as ApiProcess from "./ApiProcess.ts"
import * as BenchDatabase from "./BenchDatabase.ts"
import { follow as follower } from "./EventFollower.ts"
import { freePort } from "./FreePort.ts"
import { summarize } from "./Stats.ts"
import * as OurDrain from "./scenarios/OurDrain.ts"

const runs = Number(process.env.RUNS ?? 3)
const backlog = Number(process.env.BACKLOG ?? 20_000)
const levels = (process.env.CONCURRENCY ?? "8,32").split(",").map(Number)
const gateOnly = process.env.GATE_ONLY === "1"

await BenchDatabase.using("events_budget", async (db) => {
  const lines: Array<string> = []
  for (const concurrency of levels) {
    const ratios: Array<number> = []
    const withFollower: Array<number> = []
    const without: Array<number> = []
    for (let i = 0; i < runs; i++) {
      const result = new Map<boolean, number>()
      for (const following of i % 2 === 0 ? [true, false] : [false, true]) {
        const holder = following && gateOnly ? new SQL({ url: db.url, max: 1 }) : undefined
        await holder?.unsafe("SELECT pg_advisory_lock(1785684594, 2)")
        const api = following && !gateOnly ? await ApiProcess.start(db.url, freePort()) : undefined
        const client = api === undefined ? undefined : await follower(api.baseUrl)
        const run = await OurDrain.run(
          db,
          { backlog, concurrency, processes: 1 },
          `events-${following ? "followed" : "alone"}-c${concurrency}-${i}`
        )
        // the follower catches up with the last events before it stops counting
        if (client !== undefined) await Bun.sleep(1000)
        const seen = client === undefined ? undefined : await client.stop()
        await api?.stop()
        await holder?.close()
        result.set(following, run.jobsPerSecond)
        console.log(
          `c=${concurrency} run ${i + 1} ${following ? "with a follower" : "without"}: ${run.jobsPerSecond.toFixed(0)} jobs/s` +
            (seen === undefined
              ? ""
              : `; the follower received ${seen.events} events (${(seen.events / backlog).toFixed(2)} a job), ${seen.resets} resets`)
        )
      }
      withFollower.push(result.get(true)!)
      without.push(result.get(false)!)
      ratios.push(result.get(true)! / result.get(false)!)
    }
    const r = summarize(ratios)
    const line = `| ${concurrency} | ${summarize(withFollower).median.toFixed(0)} | ${summarize(without).median.toFixed(0)} | ${r.median.toFixed(2)} (${r.min.toFixed(2)}-${r.max.toFixed(2)}) |`
    lines.push(line)
    console.log(line)
  }
  console.log(
    [
      "| concurrency | with a follower (jobs/s) | without (jobs/s) | ratio, median of pairs (range) |",
      "|---|---|---|---|",
      ...lines
    ].join("\n")
  )
})
