/**
 * What Postgres itself executes per job on the drain's statements, counted in instructions (valgrind's
 * callgrind), which, unlike CPU time on this shared 2-core machine, does not move with the neighbours' load:
 * the same run counts the same within about half a percent. For a change to the schema, a trigger or a
 * statement, where a paired drain cannot resolve a few percent.
 *
 * A private cluster (bench/PrivateCluster.ts) is migrated, then shut down; for each variant and mode, a copy of
 * its files is started as a single-user backend (`postgres --single`, no client, no network) that applies the
 * variant's SQL, inserts the backlog and analyzes it, and then another one, under callgrind, runs the cycles:
 * the claim of bench/pgbench/worker-cycle.sql (500 at a time; its row output is counted, not sent) and the
 * completion of the mode (keeping rows as `JobRepo.complete` does, or deleting them as
 * `FlowRepo.completeDeleting` does, bench/pgbench/complete-deleting.sql), each statement its own
 * transaction, until the backlog is done. Both are prepared statements, as the worker's are (so the
 * completion runs on a generic plan after five calls, as it does in the worker); the claim keeps its ids in a
 * session setting, which the completion reads as its parameter. The backend's start-up, measured once with an
 * empty script, is taken off.
 *
 *   bun bench/pg-instructions.ts [variant.sql ...]
 *
 * A variant file holds SQL statements for the single-user backend, each ending with `;` and an empty line
 * (e.g. `ALTER TABLE jobs DISABLE TRIGGER jobs_record_event_update;`). PG_INSTRUCTIONS_MODES (default
 * `kept,deleting`), PG_INSTRUCTIONS_BACKLOG (default 20,000), PG_INSTRUCTIONS_BATCH (jobs a claim, default
 * 500), PG_INSTRUCTIONS_KEEP (a directory: keep each run's callgrind file there, as `<mode>-<variant index>.out`,
 * for `callgrind_annotate --inclusive=yes`). Needs valgrind (on every machine here). Prints one JSON line per
 * variant and mode.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { benchDirectory } from "./BenchDependencies.ts"
import * as PrivateCluster from "./PrivateCluster.ts"

const modes = (process.env.PG_INSTRUCTIONS_MODES ?? "kept,deleting").split(",") as Array<"kept" | "deleting">
const backlog = Number(process.env.PG_INSTRUCTIONS_BACKLOG ?? 20_000)
const batch = Number(process.env.PG_INSTRUCTIONS_BATCH ?? 500)
const keep = process.env.PG_INSTRUCTIONS_KEEP
const variants = [undefined, ...process.argv.slice(2)]

const cycle = readFileSync(`${benchDirectory}pgbench/worker-cycle.sql`, "utf8")
// The worker's statements are prepared once per connection, and Postgres plans a prepared statement afresh
// for its first five executions and then keeps a generic plan if that costs no more (the completion's does:
// the primary key, id by id; the claim's does not, so it is planned on every call). So both are prepared here
// too: the claim with its size as the parameter, keeping its ids in a session setting; the completion with
// the ids, read from that setting.
const claimStart = cycle.indexOf("WITH ready AS")
const outer = cycle.indexOf("SELECT coalesce(array_agg")
const claimRows = cycle.slice(
  cycle.indexOf("FROM (SELECT c.id", outer) + "FROM ".length,
  cycle.indexOf(") s \\gset")
)
const claimStatement = `${cycle.slice(claimStart, outer)}SELECT set_config('bench.ids', coalesce(array_agg(id), '{}')::text, false) FROM ${claimRows}) s`
const keptCompletion = cycle.slice(
  cycle.indexOf("WITH done AS"),
  cycle.indexOf("FROM done;") + "FROM done".length
)
const deletingFile = readFileSync(`${benchDirectory}pgbench/complete-deleting.sql`, "utf8")
const deletingCompletion = deletingFile.slice(deletingFile.indexOf("WITH x AS")).trimEnd().replace(/;$/, "")
const completion = { kept: keptCompletion, deleting: deletingCompletion }
const script = (mode: "kept" | "deleting") => {
  const prepare = [
    `PREPARE claim_batch(integer) AS ${claimStatement.replaceAll(":batch", "$1")};`,
    `PREPARE complete_batch(uuid[], integer) AS ${completion[mode].replaceAll(":ids::uuid[]", "$1::uuid[]").replaceAll(":batch", "$2")};`
  ]
  const cycles = `EXECUTE claim_batch(${batch});\n\nEXECUTE complete_batch(current_setting('bench.ids')::uuid[], ${batch});\n\n`
  return `${prepare.join("\n\n")}\n\n${cycles.repeat(Math.ceil(backlog / batch))}`
}
const setup = `INSERT INTO jobs (queue, kind, payload) SELECT 'default', 'noop', '{}'::jsonb FROM generate_series(1, ${backlog});\n\nANALYZE jobs;\n\nCHECKPOINT;\n\n`

const work = mkdtempSync(`${tmpdir()}/pg-instructions-`)
const ids = PrivateCluster.owner()
if (ids !== undefined) Bun.spawnSync(["chown", `${ids.uid}:${ids.gid}`, work])
const cluster = PrivateCluster.start()
try {
  const admin = new Bun.SQL(cluster.adminUrl)
  await admin`CREATE DATABASE q`
  await admin.close()
  const migrate = Bun.spawnSync([process.execPath, "src/migrate.ts"], {
    cwd: `${benchDirectory}..`,
    env: { ...process.env, DATABASE_URL: cluster.adminUrl.replace(/\/postgres$/, "/q") },
    stderr: "pipe"
  })
  if (migrate.exitCode !== 0) throw new Error(`migrating failed: ${migrate.stderr.toString()}`)
  cluster.shutDown()

  const single = (data: string, input: string, callgrindOut?: string) => {
    const backend = [
      PrivateCluster.binary("postgres"),
      "--single",
      "-j",
      "-D",
      data,
      "-c",
      "autovacuum=off",
      "q"
    ]
    const args =
      callgrindOut === undefined
        ? backend
        : ["valgrind", "--tool=callgrind", `--callgrind-out-file=${callgrindOut}`, ...backend]
    const result = PrivateCluster.run(args, input, 900_000)
    const text = `${result.stdout.toString()}\n${result.stderr.toString()}`
    if (/\bERROR:/.test(text))
      throw new Error(`the single-user backend reported an error: ${text.slice(0, 2000)}`)
    return text
  }
  const collected = (text: string) => Number(/Collected : (\d+)/.exec(text)?.[1] ?? Number.NaN)
  const copy = (name: string) => {
    const data = `${work}/${name}`
    cpSync(cluster.data, data, { recursive: true })
    if (ids !== undefined) Bun.spawnSync(["chown", "-R", `${ids.uid}:${ids.gid}`, data])
    Bun.spawnSync(["chmod", "700", data])
    return data
  }
  const startUp = collected(single(copy("empty"), "SELECT 1;\n\n", `${work}/empty.out`))
  for (const variant of variants) {
    for (const mode of modes) {
      const data = copy(`${mode}-${variants.indexOf(variant)}`)
      if (variant !== undefined) single(data, readFileSync(variant, "utf8"))
      single(data, setup)
      const counted = collected(single(data, script(mode), `${work}/run.out`))
      if (keep !== undefined) cpSync(`${work}/run.out`, `${keep}/${mode}-${variants.indexOf(variant)}.out`)
      const left = single(
        data,
        "SELECT count(*) AS left FROM jobs WHERE status IN ('queued', 'running');\n\n"
      )
      console.log(
        JSON.stringify({
          variant: variant ?? "as migrated",
          mode,
          backlog,
          instructionsPerJob: Math.round((counted - startUp) / backlog),
          unfinished: Number(/left = "(\d+)"/.exec(left)?.[1] ?? Number.NaN)
        })
      )
      rmSync(data, { recursive: true, force: true })
    }
  }
} finally {
  cluster.stop()
  rmSync(work, { recursive: true, force: true })
}
