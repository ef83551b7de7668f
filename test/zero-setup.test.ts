import { afterAll, describe, expect, it } from "bun:test"
import { existsSync } from "node:fs"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { hostname, tmpdir } from "node:os"
import { fileURLToPath } from "node:url"
import { freePort, waitUntilHealthy } from "./support/ports.ts"
import { waitFor } from "./support/runtime.ts"

const root = fileURLToPath(new URL("..", import.meta.url))
const dataDir = await mkdtemp(`${tmpdir()}/jobq-zero-setup-`)
afterAll(async () => {
  for (const path of [dataDir, `${dataDir}.lock`]) await rm(path, { recursive: true, force: true })
})

/**
 * `npm start` is `bun run src/dev.ts` (after the JavaScriptCore setting every Bun script sets, which this test
 * leaves out: it checks what the program does, not how fast); run that with no DATABASE_URL at all.
 */
const start = (port: number, directory = dataDir) => {
  const { DATABASE_URL: _, TEST_DATABASE_URL: __, ...env } = process.env
  const child = Bun.spawn([process.execPath, "run", "src/dev.ts"], {
    cwd: root,
    env: { ...env, PGLITE_DATA_DIR: directory, PORT: String(port) },
    stdout: "pipe",
    stderr: "pipe"
  })
  children.push(child)
  return child
}
const children: Array<Bun.Subprocess> = []
afterAll(() => {
  for (const child of children) child.kill("SIGKILL")
})

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
    // after the JavaScriptCore setting every Bun script sets (test/packaging.test.ts)
    expect(pkg.scripts.start).toMatch(/^(?:[A-Za-z_]\w*=\S+ )*bun run src\/dev\.ts$/)
  })

  it("runs the API and a worker on an embedded Postgres that keeps its jobs across restarts, one process per directory", async () => {
    const port = freePort()
    const base = `http://127.0.0.1:${port}`
    const lock = `${dataDir}.lock`
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

      // a second npm start in the same folder: it exits, or (as before the lock) it serves on its own port
      // as if all were well, while the two overwrite each other's data
      const intruderPort = freePort()
      const intruder = start(intruderPort)
      const code = await Promise.race([
        intruder.exited,
        waitUntilHealthy(`http://127.0.0.1:${intruderPort}/health`).then(() => "healthy")
      ])
      if (code !== 1) intruder.kill("SIGKILL")
      const stderr = await new Response(intruder.stderr).text()
      expect(code).toBe(1)
      expect(stderr.trim()).toStartWith(
        `the data directory ${dataDir} is in use by another process (pid ${first.pid} on this host`
      )
      expect(stderr).toContain(`delete ${lock}.`)
      // the first is unharmed
      expect((await fetch(`${base}/health`)).status).toBe(200)
      expect(existsSync(lock)).toBe(true)
    } finally {
      expect(await stop(first)).toBe(130)
    }
    // it gave its lock back
    expect(existsSync(lock)).toBe(false)
    const log = await output
    expect(log).toContain("embedded Postgres (PGlite)")
    expect(log).toContain(`Swagger UI http://localhost:${port}/docs`)

    // a lock left by a killed npm start (its pid is gone from this host) is taken over, with a log line
    const gone = Bun.spawn(["true"])
    await gone.exited
    await writeFile(
      lock,
      JSON.stringify({ pid: gone.pid, host: hostname(), since: "2026-01-01T00:00:00.000Z" })
    )
    const second = start(port)
    const secondOutput = new Response(second.stdout).text()
    try {
      await waitUntilHealthy(`${base}/health`)
      const job = (await (await fetch(`${base}/jobs/${id!}`)).json()) as { status: string; result: unknown }
      expect(job.status).toBe("succeeded")
      expect(job.result).toMatchObject({ rounds: 5 })
    } finally {
      await stop(second)
    }
    expect(await secondOutput).toContain(
      `its owner, pid ${gone.pid} (since 2026-01-01T00:00:00.000Z), is no longer running`
    )
  }, 120_000)
})
