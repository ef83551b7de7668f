import { afterAll, describe, expect, it } from "bun:test"
import { tmpdir } from "node:os"
import { fileURLToPath } from "node:url"
import { freshDatabase } from "../support/database.ts"
import { freePort } from "../support/ports.ts"
import { waitFor } from "../support/runtime.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))
const db = await freshDatabase(import.meta.file)
afterAll(() => db.drop())

const deadline = <A>(promise: Promise<A>, ms: number, what: string) =>
  Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms))
  ])

describe("bun run api (src/api.ts)", () => {
  it("serves on PORT with API_TOKENS from the environment, and stops on SIGTERM", async () => {
    const port = freePort()
    const log = `${tmpdir()}/jobq-api-entry-${process.pid}.log`
    const child = Bun.spawn([process.execPath, "src/api.ts"], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: db.url, PORT: String(port), API_TOKENS: "t1, t2" },
      stdout: Bun.file(log),
      stderr: Bun.file(`${log}.err`)
    })
    afterAll(() => child.kill("SIGKILL"))
    const base = `http://127.0.0.1:${port}`
    await waitFor("the API to answer /health", () =>
      fetch(`${base}/health`).then(
        (r) => (r.status === 200 ? true : undefined),
        () => undefined
      )
    )
    expect((await fetch(`${base}/jobs`)).status).toBe(401)
    const created = await fetch(`${base}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer t2" },
      body: JSON.stringify({ kind: "noop", payload: {} })
    })
    expect(created.status).toBe(201)
    child.kill("SIGTERM")
    // src/platform/Main.ts interrupts the main fiber, runs every finalizer (server, pool), then exits 130
    expect(await deadline(child.exited, 15_000, "the API did not exit after SIGTERM")).toBe(130)
    await expect(fetch(`${base}/health`)).rejects.toThrow()
  }, 30_000)
  it("refuses to start without DATABASE_URL: a non-zero exit and a message that names it", async () => {
    const { DATABASE_URL: _, ...withoutUrl } = process.env
    // --no-env-file: a developer's .env (from .env.example) must not hand it one
    const child = Bun.spawn([process.execPath, "--no-env-file", "src/api.ts"], {
      cwd: root,
      env: { ...withoutUrl, PORT: String(freePort()) },
      stdout: "pipe",
      stderr: "pipe"
    })
    afterAll(() => child.kill("SIGKILL"))
    const code = await deadline(child.exited, 15_000, "the API did not exit without DATABASE_URL")
    const output = `${await new Response(child.stdout).text()}${await new Response(child.stderr).text()}`
    expect(code).not.toBe(0)
    expect(output).toContain("DATABASE_URL")
  }, 30_000)
})
