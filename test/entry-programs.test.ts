/**
 * The entry programs as processes: how they stop (one signal drains, a second stops now) and how they
 * refuse to start (one line naming the setting, a non-zero exit).
 */
import { afterAll, describe, expect, it } from "bun:test"
import { freshDatabase } from "./support/database.ts"
import { freePort, waitUntilHealthy } from "./support/ports.ts"
import { exitCode, programs } from "./support/processes.ts"
import { waitFor } from "./support/runtime.ts"

const db = await freshDatabase(import.meta.file)
const { spawn, killAll } = programs()
afterAll(async () => {
  await killAll()
  await db.drop()
})

const job = async (base: string, id: string) =>
  (await (await fetch(`${base}/jobs/${id}`)).json()) as {
    status: string
    attempts: number
    leaseOwner: string | null
  }

describe("npm start (src/dev.ts) on Ctrl-C", () => {
  it("serves one /metrics, keeps the API answering while the worker drains, says what it waits for, and stops now on a second signal", async () => {
    const port = freePort()
    const workerPort = freePort()
    const base = `http://127.0.0.1:${port}`
    const dev = spawn("src/dev.ts", {
      DATABASE_URL: db.url,
      PORT: String(port),
      WORKER_METRICS_PORT: String(workerPort),
      WORKER_SHUTDOWN_GRACE: "60 seconds"
    })
    await waitUntilHealthy(`${base}/health`, 30_000)
    const created = await fetch(`${base}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ kind: "sleep", payload: { ms: 120_000 }, maxAttempts: 1 })
    })
    const { id } = (await created.json()) as { id: string }
    await waitFor("the job to run", async () =>
      (await job(base, id)).status === "running" ? true : undefined
    )
    // one process, one /metrics: the API's on PORT carries the worker's families; nothing on the worker's port
    const metrics = await (await fetch(`${base}/metrics`)).text()
    expect(metrics).toContain('jobq_jobs_claimed_total{kind="sleep",queue="default"')
    expect(metrics).toContain("jobq_http_requests_total{")
    await expect(fetch(`http://127.0.0.1:${workerPort}/metrics`)).rejects.toThrow()

    dev.process.kill("SIGINT")
    await waitFor("the worker to say what it waits for", async () =>
      dev.stdout().includes(`for 1 running jobs (${id}); a second SIGINT or SIGTERM`) ? true : undefined
    )
    // the API still answers while the worker drains
    expect(await job(base, id)).toMatchObject({ status: "running" })
    expect((await fetch(`${base}/health`)).status).toBe(200)

    dev.process.kill("SIGINT")
    // well within the 60 s grace period
    expect(await exitCode(dev, 15_000)).toBe(130)
    expect(dev.stderr()).toContain("SIGINT again: stopping now")
    const rows = await new Bun.SQL(db.url)`SELECT status, attempts, lease_owner FROM jobs WHERE id = ${id}`
    expect(rows).toEqual([{ status: "queued", attempts: 0, lease_owner: null }])
  }, 60_000)
})

describe("a program that cannot start says why in one line and exits 1", () => {
  it("without DATABASE_URL: `npm run api` and `npm run worker` print the message once, with no stack trace", async () => {
    for (const file of ["src/api.ts", "src/worker.ts"]) {
      const program = spawn(file, { PORT: String(freePort()), WORKER_METRICS_PORT: "0" })
      expect(await exitCode(program, 15_000)).toBe(1)
      const stderr = program.stderr()
      expect(stderr.match(/DATABASE_URL is not set/g)?.length).toBe(1)
      expect(stderr).not.toMatch(/\n\s+at /)
      expect(stderr.trim().split("\n").length).toBe(1)
    }
  }, 40_000)

  it("a port in use names its setting: PORT for the API, WORKER_METRICS_PORT for the worker", async () => {
    const taken = Bun.serve({ port: 0, hostname: "0.0.0.0", fetch: () => new Response("taken") })
    try {
      const api = spawn("src/api.ts", { DATABASE_URL: db.url, PORT: String(taken.port) })
      const worker = spawn("src/worker.ts", { DATABASE_URL: db.url, WORKER_METRICS_PORT: String(taken.port) })
      // both started at once: on a loaded machine a start (Bun, the kinds, the pool) can take seconds
      const [apiExit, workerExit] = await Promise.all([exitCode(api, 30_000), exitCode(worker, 30_000)])
      expect(apiExit).toBe(1)
      expect(workerExit).toBe(1)
      expect(api.stderr().trim()).toBe(
        `PORT ${taken.port} is in use: another program listens on it. Stop that program, or set PORT to a free port.`
      )
      expect(worker.stderr().trim()).toStartWith(`WORKER_METRICS_PORT ${taken.port} is in use`)
      expect(worker.stderr().trim().split("\n").length).toBe(1)
    } finally {
      taken.stop(true)
    }
  }, 45_000)
})
