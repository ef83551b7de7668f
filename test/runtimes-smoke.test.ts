/**
 * Every program on every runtime, started by the commands package.json documents (`npm run api`,
 * `api:node`, `api:deno`, ...): Bun 1.4, Node 22, Node 24 (type stripping) and Deno 2, all from npm
 * (test/support/runtimes.ts). On each: `migrate` applies the migrations to an empty database; `api` and
 * `worker` serve the API's endpoints and the worker's /health and /metrics, run one job and cancel one
 * running job; `start` (src/dev.ts) runs a job on the embedded PGlite (Bun: test/zero-setup.test.ts); and SIGTERM ends each program
 * cleanly (exit 130 after its finalizers ran). The Deno API runs with `--allow-net --allow-env` only: no
 * file system, no `sys`, no subprocess, what a Deno Deploy-style host grants.
 */
import { afterAll, describe, expect, it } from "bun:test"
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { emptyDatabase, freshDatabase } from "./support/database.ts"
import { freePort } from "./support/ports.ts"
import { programBaseEnv } from "./support/processes.ts"
import { waitFor } from "./support/runtime.ts"
import { allRuntimes, executable, type RuntimeName, splitScript } from "./support/runtimes.ts"

const root = fileURLToPath(new URL("..", import.meta.url))
const scripts = (
  JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }
).scripts
const migrationCount = readdirSync(join(root, "migrations")).filter((f) => f.endsWith(".sql")).length

const db = await freshDatabase(import.meta.file)
const scratch = mkdtempSync(join(tmpdir(), "jobq-runtimes-"))
const running: Array<Bun.Subprocess> = []
afterAll(async () => {
  for (const child of running) child.kill("SIGKILL")
  rmSync(scratch, { recursive: true, force: true })
  await db.drop()
})

type Program = "api" | "worker" | "migrate" | "start"

/** The package.json script that runs `program` on `runtime`, with the runtime's executable put in. */
export const documentedCommand = (runtime: RuntimeName, program: Program) => {
  const name = runtime === "bun" ? program : `${program}:${runtime === "deno" ? "deno" : "node"}`
  const script = scripts[name]
  if (script === undefined) throw new Error(`package.json has no "${name}" script`)
  // `NAME=value` before the command (the Bun scripts' JavaScriptCore setting): passed on through env(1)
  const { env, command } = splitScript(script)
  const [tool, ...args] = command
  expect(tool).toBe(runtime === "bun" ? "bun" : runtime === "deno" ? "deno" : "node")
  const assignments = Object.entries(env).map(([name, value]) => `${name}=${value}`)
  return assignments.length === 0
    ? [executable(runtime), ...args]
    : ["env", ...assignments, executable(runtime), ...args]
}

const start = (argv: Array<string>, env: Record<string, string>) => {
  const child = Bun.spawn(argv, {
    cwd: root,
    env: { ...programBaseEnv, DATABASE_POOL_MAX: "3", LOG_LEVEL: "Warning", ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe"
  })
  running.push(child)
  let output = ""
  const decoder = new TextDecoder()
  for (const stream of [child.stdout, child.stderr]) {
    void (async () => {
      const reader = stream.getReader()
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return
        output += decoder.decode(value, { stream: true })
      }
    })()
  }
  return { child, output: () => output }
}

type Started = ReturnType<typeof start>

/** SIGTERM, then the exit code within `ms` (the program's output in the error otherwise). */
const stop = async (program: Started, ms = 20_000) => {
  program.child.kill("SIGTERM")
  const code = await Promise.race([
    program.child.exited,
    Bun.sleep(ms).then(() => {
      throw new Error(`no exit ${ms} ms after SIGTERM; output: ${program.output().slice(-2000)}`)
    })
  ])
  return code
}

const healthy = (url: string, program: Started) =>
  waitFor(
    `${url} to answer 200`,
    async () => {
      if (program.child.exitCode !== null)
        throw new Error(`exited ${program.child.exitCode} before it served: ${program.output().slice(-2000)}`)
      return fetch(url).then(
        (r) => (r.status === 200 ? true : undefined),
        () => undefined
      )
    },
    { timeoutMs: 30_000, intervalMs: 100 }
  )

const json = async (response: Response) => ({ status: response.status, body: (await response.json()) as any })
const post = (url: string, body?: unknown) =>
  fetch(url, {
    method: "POST",
    ...(body === undefined
      ? {}
      : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
  }).then(json)

const statusOf = (base: string, id: string, wanted: string) =>
  waitFor(
    `job ${id} to be ${wanted}`,
    async () => {
      const { body } = await json(await fetch(`${base}/jobs/${id}`))
      return body.status === wanted ? body : undefined
    },
    { timeoutMs: 20_000, intervalMs: 50 }
  )

/** Waits until the API's `jobq_job_waiters` gauge reads `count`. */
const waiters = (base: string, count: number) =>
  waitFor(
    `jobq_job_waiters to be ${count}`,
    async () => {
      const text = await (await fetch(`${base}/metrics`)).text()
      const value = /^jobq_job_waiters(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1]
      return Number(value) === count ? true : undefined
    },
    { timeoutMs: 10_000, intervalMs: 50 }
  )

for (const runtime of allRuntimes) {
  describe(`on ${runtime}`, () => {
    it("migrate applies every migration to an empty database and exits 0", async () => {
      const empty = await emptyDatabase(`runtimes_${runtime}`)
      try {
        const program = start(documentedCommand(runtime, "migrate"), { DATABASE_URL: empty.url })
        const code = await Promise.race([program.child.exited, Bun.sleep(30_000).then(() => "timeout")])
        expect({ code, output: code === 0 ? "" : program.output() }).toEqual({ code: 0, output: "" })
        const check = start(documentedCommand(runtime, "migrate"), {
          DATABASE_URL: empty.url,
          LOG_LEVEL: "Info"
        })
        expect(await check.child.exited).toBe(0)
        expect(check.output()).toContain(`${migrationCount} migrations applied earlier`)
      } finally {
        await empty.drop()
      }
    }, 60_000)

    it("api and worker: every endpoint answers, a job runs, a running job is cancelled, a client leaving a wait ends it, SIGTERM ends both", async () => {
      const port = freePort()
      const workerPort = freePort()
      const base = `http://127.0.0.1:${port}`
      const queue = `smoke_${runtime}`
      const apiCommand = documentedCommand(runtime, "api")
      if (runtime === "deno") {
        // the edge claim: no file system, sys or subprocess permission
        expect(apiCommand.filter((a) => a.startsWith("--allow") || a === "-A").sort()).toEqual([
          "--allow-env",
          "--allow-net"
        ])
      }
      const api = start(apiCommand, { DATABASE_URL: db.url, PORT: String(port) })
      const worker = start(documentedCommand(runtime, "worker"), {
        DATABASE_URL: db.url,
        WORKER_METRICS_PORT: String(workerPort),
        WORKER_QUEUES: queue,
        WORKER_CONCURRENCY: "2"
      })
      await healthy(`${base}/health`, api)
      await healthy(`http://127.0.0.1:${workerPort}/health`, worker)

      const created = await post(`${base}/jobs`, { kind: "noop", payload: {}, queue })
      expect(created.status).toBe(201)
      const done = await statusOf(base, created.body.id, "succeeded")
      expect(done.attempts).toBe(1)

      const listed = await json(await fetch(`${base}/jobs?queue=${queue}`))
      expect(listed.status).toBe(200)
      expect(JSON.stringify(listed.body)).toContain(created.body.id)

      const long = await post(`${base}/jobs`, {
        kind: "sleep",
        payload: { ms: 120_000 },
        queue,
        maxAttempts: 1
      })
      await statusOf(base, long.body.id, "running")
      const cancel = await post(`${base}/jobs/${long.body.id}/cancel`)
      expect({ status: cancel.status, outcome: cancel.body.outcome }).toEqual({
        status: 202,
        outcome: "cancel_requested"
      })
      await statusOf(base, long.body.id, "cancelled")

      // a client that leaves a wait ends it on the server at once (Effect interrupts the request when the
      // runtime aborts its signal), not at the wait's timeout
      const parked = await post(`${base}/jobs`, { kind: "noop", payload: {}, queue: `${queue}_parked` })
      const leaving = new AbortController()
      const wait = fetch(`${base}/jobs/${parked.body.id}/wait?timeout=60s`, { signal: leaving.signal }).catch(
        () => "left"
      )
      await waiters(base, 1)
      leaving.abort()
      expect(await wait).toBe("left")
      await waiters(base, 0)

      expect((await fetch(`${base}/jobs/00000000-0000-7000-8000-000000000000`)).status).toBe(404)
      expect((await post(`${base}/jobs`, { kind: "noop", payload: {}, priority: "high" })).status).toBe(422)
      const openapi = await json(await fetch(`${base}/api-docs/openapi.json`))
      expect(openapi.status).toBe(200)
      expect(Object.keys(openapi.body.paths)).toContain("/jobs/{id}/cancel")
      expect(await (await fetch(`${base}/metrics`)).text()).toContain("jobq_")
      const workerMetrics = await fetch(`http://127.0.0.1:${workerPort}/metrics`)
      expect(await workerMetrics.text()).toContain("jobq_")

      expect(await stop(worker)).toBe(130)
      expect(await stop(api)).toBe(130)
      await expect(fetch(`${base}/health`)).rejects.toThrow()
    }, 90_000)

    // on Bun, test/zero-setup.test.ts covers it (and more)
    if (runtime !== "bun")
      it("start (npm start) runs a job on the embedded PGlite and stops on SIGTERM", async () => {
        const port = freePort()
        const base = `http://127.0.0.1:${port}`
        const dev = start(documentedCommand(runtime, "start"), {
          PORT: String(port),
          PGLITE_DATA_DIR: join(scratch, `pglite-${runtime}`)
        })
        await healthy(`${base}/health`, dev)
        const created = await post(`${base}/jobs`, { kind: "noop", payload: {} })
        expect(created.status).toBe(201)
        await statusOf(base, created.body.id, "succeeded")
        expect(await stop(dev)).toBe(130)
      }, 90_000)
  })
}

describe("examples/deno-deploy.ts", () => {
  it("serves the API on Deno.serve with --allow-net --allow-env only", async () => {
    const port = freePort()
    const base = `http://127.0.0.1:${port}`
    const example = start(
      [executable("deno"), "run", "--allow-net", "--allow-env", "examples/deno-deploy.ts"],
      { DATABASE_URL: db.url, PORT: String(port) }
    )
    await healthy(`${base}/health`, example)
    const created = await post(`${base}/jobs`, { kind: "noop", payload: {}, queue: "deno_deploy" })
    expect(created.status).toBe(201)
    expect((await json(await fetch(`${base}/jobs/${created.body.id}`))).body.status).toBe("queued")
    example.child.kill("SIGTERM")
    await example.child.exited
  }, 60_000)
})
