/**
 * Faults the chaos scenarios inject into the database server: stop and start it, terminate the sessions
 * of given applications, hold a transaction open. Everything is bounded, and the server is always started
 * again (`withServerStopped` starts it in a `finally`, whatever the body did).
 */
import { existsSync, readdirSync } from "node:fs"
import type { SQL } from "bun"

/**
 * The local cluster behind TEST_DATABASE_URL: RELIABILITY_PG_CLUSTER ("15 main"), else the one version under
 * /etc/postgresql, cluster "main" (what .ci/run starts).
 */
const cluster = () => {
  const configured = process.env.RELIABILITY_PG_CLUSTER
  if (configured !== undefined && configured !== "") return configured.split(/\s+/)
  const versions = existsSync("/etc/postgresql") ? readdirSync("/etc/postgresql") : []
  if (versions.length !== 1) {
    throw new Error(
      "postgres_restart needs a local cluster it may stop and start: set RELIABILITY_PG_CLUSTER, e.g. '15 main'"
    )
  }
  return [versions[0]!, "main"]
}

const pgctl = (action: "start" | "stop") => {
  const args = ["pg_ctlcluster", "--skip-systemctl-redirect", ...cluster(), action]
  if (action === "stop") args.push("--mode", "fast")
  const result = Bun.spawnSync(args, { stdout: "pipe", stderr: "pipe", timeout: 60_000 })
  // starting a running cluster exits 2 ("already running"): that is the state we want
  if (result.exitCode !== 0 && !(action === "start" && result.exitCode === 2)) {
    throw new Error(`${args.join(" ")} exited ${result.exitCode}: ${result.stderr.toString()}`)
  }
}

const serverAnswers = async (url: string) => {
  const probe = Bun.spawnSync(["pg_isready", "-d", url, "-t", "2"], { timeout: 5_000 })
  return probe.exitCode === 0
}

/**
 * Stops the server (fast mode: sessions are terminated, in-flight transactions roll back), runs `whileDown`,
 * then starts it again, in a `finally`, and waits until it accepts connections. Answers the milliseconds the
 * server was down and `whileDown`'s value.
 */
export const withServerStopped = async <A>(url: string, whileDown: () => Promise<A>) => {
  const began = Date.now()
  pgctl("stop")
  let value: A
  try {
    value = await whileDown()
  } finally {
    await startAgain(url)
  }
  return { downMs: Date.now() - began, value }
}

/** Starts the cluster (a few tries) and waits until it accepts connections. */
const startAgain = async (url: string) => {
  for (let round = 0; ; round++) {
    try {
      pgctl("start")
      break
    } catch (error) {
      if (round >= 5) throw error
      await Bun.sleep(500)
    }
  }
  const deadline = Date.now() + 60_000
  while (!(await serverAnswers(url))) {
    if (Date.now() > deadline) throw new Error("the database server did not come back within 60 s")
    await Bun.sleep(100)
  }
}

/** Terminates every session of `database` whose application_name is one of `applications`; answers how many. */
export const terminateBackends = async (
  admin: SQL,
  database: string,
  applications: ReadonlyArray<string>
): Promise<number> => {
  const rows = await admin`
    SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
    WHERE datname = ${database} AND application_name = ANY(${applications}::text[]) AND pid <> pg_backend_pid()`
  return rows.filter((r: { done: boolean }) => r.done).length
}

/** Dead tuples of `jobs` as the statistics collector last counted them (flushed first). */
export const deadTuples = async (pg: SQL) => {
  await pg`SELECT pg_stat_force_next_flush()`.catch(() => undefined)
  const [row] = await pg`
    SELECT n_dead_tup::int AS dead, n_live_tup::int AS live FROM pg_stat_user_tables WHERE relname = 'jobs'`
  return { dead: (row?.dead ?? 0) as number, live: (row?.live ?? 0) as number }
}
