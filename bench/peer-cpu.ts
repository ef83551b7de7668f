/**
 * Postgres CPU and the worker process's CPU per job over a 20,000-job no-op drain, ours (WORKER_PREFETCH
 * as PEER_CPU_PREFETCH says, default 500; `default` leaves it to the worker's default; rows kept and
 * JOB_RETENTION=0) against graphile-worker (its Node process), in turn within each round, measured as in the drain scenario
 * (bench/ProcessCpu.ts): a shorter run than `npm run bench` for checking the CPU target at a given load.
 * Run: `bun bench/peer-cpu.ts` (PEER_CPU_ROUNDS, default 3; PEER_CPU_CONCURRENCY, default 8,32;
 * PEER_CPU_BACKLOG, default 20,000).
 */
import * as BenchDatabase from "./BenchDatabase.ts"
import * as OurDrain from "./scenarios/OurDrain.ts"
import * as PeerDrain from "./scenarios/PeerDrain.ts"

const rounds = Number(process.env.PEER_CPU_ROUNDS ?? 3)
const prefetch = process.env.PEER_CPU_PREFETCH ?? "500"
const perJob = (seconds: number | undefined) => Number((((seconds ?? Number.NaN) * 1e6) / backlog).toFixed(1))
const backlog = Number(process.env.PEER_CPU_BACKLOG ?? 20_000)
const graphile = PeerDrain.peers.find((p) => p.name.startsWith("graphile-worker"))!
const admin = BenchDatabase.admin()
const load = async () => (await Bun.file("/proc/loadavg").text()).split(" ").slice(0, 3).join(" ")
console.log(JSON.stringify({ loadAtStart: await load() }))
await BenchDatabase.using("peercpu", async (db) => {
  for (const concurrency of (process.env.PEER_CPU_CONCURRENCY ?? "8,32").split(",").map(Number)) {
    for (let round = 0; round < rounds; round++) {
      for (const deleteSucceeded of [false, true]) {
        const run = await OurDrain.run(
          db,
          {
            backlog,
            concurrency,
            processes: 1,
            deleteSucceeded,
            cpuFrom: admin,
            ...(prefetch === "default" ? { defaultPrefetch: true } : { env: { WORKER_PREFETCH: prefetch } })
          },
          `peercpu-c${concurrency}-${round}-${deleteSucceeded}`
        )
        const system = deleteSucceeded ? "ours, JOB_RETENTION=0" : "ours"
        console.log(
          JSON.stringify({
            concurrency,
            round,
            system,
            jobsPerSecond: Math.round(run.jobsPerSecond),
            microseconds: perJob(run.postgresCpuSeconds),
            workerMicroseconds: perJob(run.workerCpuSeconds)
          })
        )
      }
      const theirs = await PeerDrain.run(graphile, db, admin, {}, { concurrency, backlog })
      console.log(
        JSON.stringify({
          concurrency,
          round,
          system: graphile.name,
          jobsPerSecond: Math.round(theirs.jobsPerSecond),
          microseconds: perJob(theirs.postgresCpuSeconds),
          workerMicroseconds: perJob(theirs.workerCpuSeconds)
        })
      )
    }
  }
})
await admin.close()
console.log(JSON.stringify({ loadAtEnd: await load() }))
