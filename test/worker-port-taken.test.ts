/**
 * A worker whose WORKER_METRICS_PORT is taken stops at once, on every runtime, and claims nothing: the
 * listener binds before the pool starts claiming (src/worker/program.ts). On Node the server module loads
 * lazily (src/platform/Server.ts), so a pool built first could claim a job and start it, then wait out its
 * shutdown grace with it before exiting; on Bun too, the pool claimed first (and gave the job back).
 */
import { afterAll, describe, expect, it } from "bun:test"
import { fileURLToPath } from "node:url"
import { freshDatabase } from "./support/database.ts"
import { programBaseEnv } from "./support/processes.ts"
import { command, type RuntimeName } from "./support/runtimes.ts"

const root = fileURLToPath(new URL("..", import.meta.url))
const db = await freshDatabase(import.meta.file)
const sql = new Bun.SQL(db.url, { max: 2 })
const taken = Bun.serve({ port: 0, hostname: "0.0.0.0", fetch: () => new Response("taken") })
const children: Array<Bun.Subprocess> = []
afterAll(async () => {
  for (const child of children) child.kill("SIGKILL")
  taken.stop(true)
  await sql.close()
  await db.drop()
})

for (const runtime of ["bun", "node24"] as const satisfies ReadonlyArray<RuntimeName>) {
  describe(`on ${runtime}`, () => {
    it("a worker whose WORKER_METRICS_PORT is taken exits 1 within seconds, names the port, and claims nothing", async () => {
      const queue = `taken_${runtime}`
      const [job] = await sql`
        INSERT INTO jobs (queue, kind, payload) VALUES (${queue}, 'sleep', '{"ms": 60000}') RETURNING id::text`
      const child = Bun.spawn(command(runtime, "src/worker.ts"), {
        cwd: root,
        env: {
          ...programBaseEnv,
          DATABASE_URL: db.url,
          DATABASE_POOL_MAX: "3",
          WORKER_METRICS_PORT: String(taken.port),
          WORKER_QUEUES: queue,
          // the pool's default grace: a claimed job would hold the exit for 30 s
          WORKER_SHUTDOWN_GRACE: "30 seconds"
        },
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe"
      })
      children.push(child)
      const started = Date.now()
      const code = await Promise.race([child.exited, Bun.sleep(15_000).then(() => "no exit within 15 s")])
      const elapsed = Date.now() - started
      const stderr = await new Response(child.stderr).text()
      expect({ code, stderr: stderr.trim() }).toEqual({
        code: 1,
        stderr: `WORKER_METRICS_PORT ${taken.port} is in use: another program listens on it. Stop that program, or set WORKER_METRICS_PORT to a free port.`
      })
      expect(elapsed).toBeLessThan(10_000)
      // the database's own record: never claimed (a claim sets started_at, and a release moves run_at and
      // updated_at, even when it refunds the attempt of a job that never started), no attempt spent
      const rows = await sql`
        SELECT status, attempts, lease_owner, started_at, updated_at = created_at AS untouched
        FROM jobs WHERE id = ${job.id}::uuid`
      expect(rows).toEqual([
        { status: "queued", attempts: 0, lease_owner: null, started_at: null, untouched: true }
      ])
    }, 30_000)
  })
}
