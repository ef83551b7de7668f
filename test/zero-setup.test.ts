import { afterAll, describe, expect, it } from "bun:test"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { fileURLToPath } from "node:url"
import { freePort, waitUntilHealthy } from "./support/ports.ts"
import { waitFor } from "./support/runtime.ts"

const root = fileURLToPath(new URL("..", import.meta.url))
const dataDir = await mkdtemp(`${tmpdir()}/jobq-zero-setup-`)
afterAll(() => rm(dataDir, { recursive: true, force: true }))

/** `npm start` is `bun run src/dev.ts`; run that with no DATABASE_URL at all. */
const start = (port: number) => {
  const { DATABASE_URL: _, TEST_DATABASE_URL: __, ...env } = process.env
  return Bun.spawn([process.execPath, "run", "src/dev.ts"], {
    cwd: root,
    env: { ...env, PGLITE_DATA_DIR: dataDir, PORT: String(port), WORKER_METRICS_PORT: "0" },
    stdout: "pipe",
    stderr: "pipe"
  })
}

const stop = async (child: Bun.Subprocess) => {
  child.kill("SIGTERM")
  const code = await Promise.race([
    child.exited,
    Bun.sleep(20_000).then(() => {
      throw new Error("npm start did not stop within 20 s of SIGTERM")
    })
  ])
  return code
}

describe("zero-setup mode (npm start without DATABASE_URL)", () => {
  it("package.json's start script is the program this test runs", async () => {
    const pkg = (await Bun.file(`${root}/package.json`).json()) as { scripts: Record<string, string> }
    expect(pkg.scripts.start).toBe("bun run src/dev.ts")
  })

  it("runs the API and a worker on an embedded Postgres that keeps its jobs across restarts", async () => {
    const port = freePort()
    const base = `http://127.0.0.1:${port}`
    const first = start(port)
    const output = new Response(first.stdout).text()
    let id: string
    try {
      await waitUntilHealthy(`${base}/health`)
      const created = await fetch(`${base}/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ kind: "cpu_hash", payload: { seed: "zero", rounds: 5 } })
      })
      expect(created.status).toBe(201)
      id = ((await created.json()) as { id: string }).id
      await waitFor("the job to succeed", async () => {
        const job = (await (await fetch(`${base}/jobs/${id}`)).json()) as { status: string }
        return job.status === "succeeded" ? job : undefined
      })
    } finally {
      await stop(first)
    }
    const log = await output
    expect(log).toContain("embedded Postgres (PGlite)")
    expect(log).toContain(`Swagger UI http://localhost:${port}/docs`)

    const second = start(port)
    try {
      await waitUntilHealthy(`${base}/health`)
      const job = (await (await fetch(`${base}/jobs/${id!}`)).json()) as { status: string; result: unknown }
      expect(job.status).toBe("succeeded")
      expect(job.result).toMatchObject({ rounds: 5 })
    } finally {
      await stop(second)
    }
  }, 120_000)
})
