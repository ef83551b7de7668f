/**
 * The runtimes the cross-runtime tests run the programs on, all from the npm registry (no other download):
 *
 * - Bun: the `bun` dev dependency (what `npm test` runs on).
 * - Deno: the `deno` dev dependency (its platform binary comes as an optional dependency, `@deno/<os>-<arch>`).
 * - Node 22 and 24: the `node-<os>-<arch>` packages at the versions pinned below, fetched with `npm pack`
 *   into `node_modules/.cache/jobq-runtimes/` on first use (about 50 MB each; npm's own cache keeps the
 *   tarball, so a fresh `npm ci` costs an unpack, not a download). They are not dev dependencies: each
 *   package declares a `node` bin, which would shadow the developer's own `node` in every npm script, and
 *   each exists for one platform only.
 *
 * `bun test/support/runtimes.ts` fetches them all and prints where they are.
 */
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../..", import.meta.url))

/** Node releases the programs are tested on (exact: a test run is repeatable). */
export const nodeVersions = { node22: "22.23.5", node24: "24.22.3" } as const

export type RuntimeName = "bun" | "deno" | keyof typeof nodeVersions

const cache = join(root, "node_modules", ".cache", "jobq-runtimes")

const run = (command: Array<string>, cwd: string) => {
  const result = Bun.spawnSync(command, {
    cwd,
    env: { ...process.env, npm_config_update_notifier: "false", npm_config_fund: "false" },
    stdout: "pipe",
    stderr: "pipe"
  })
  if (result.exitCode !== 0)
    throw new Error(`${command.join(" ")} failed (${result.exitCode}): ${result.stderr.toString()}`)
  return result.stdout.toString()
}

const fetchNode = (version: string): string => {
  const pkg = `node-${process.platform}-${process.arch}`
  const dir = join(cache, `${pkg}-${version}`)
  const binary = join(dir, "bin", "node")
  if (existsSync(binary)) return binary
  const staging = `${dir}.tmp-${process.pid}`
  rmSync(staging, { recursive: true, force: true })
  mkdirSync(staging, { recursive: true })
  const [packed] = JSON.parse(run(["npm", "pack", "--json", `${pkg}@${version}`], staging)) as Array<{
    filename: string
  }>
  run(["tar", "-xzf", packed!.filename, "--strip-components=1"], staging)
  rmSync(join(staging, packed!.filename))
  if (!existsSync(join(staging, "bin", "node"))) throw new Error(`${pkg}@${version} has no bin/node`)
  // another test process may have finished first: either copy will do
  if (!existsSync(binary)) renameSync(staging, dir)
  else rmSync(staging, { recursive: true, force: true })
  return binary
}

/** The command that starts `runtime` (fetching it first if it is a Node release not yet unpacked). */
export const executable = (runtime: RuntimeName): string => {
  switch (runtime) {
    case "bun":
      return process.execPath
    case "deno":
      return join(root, "node_modules", ".bin", "deno")
    default:
      return fetchNode(nodeVersions[runtime])
  }
}

export const allRuntimes: ReadonlyArray<RuntimeName> = ["bun", "node22", "node24", "deno"]

/**
 * A package.json script split into what it sets before its command (`NAME=value ...`: the Bun scripts'
 * JavaScriptCore setting, docs/tradeoffs.md "JIT tiering") and the command's words.
 */
export const splitScript = (script: string) => {
  const words = script.trim().split(/\s+/)
  let first = 0
  while (first < words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[first]!)) first++
  const env = Object.fromEntries(
    words.slice(0, first).map((word) => [word.slice(0, word.indexOf("=")), word.slice(word.indexOf("=") + 1)])
  )
  return { env: env as Record<string, string>, command: words.slice(first) }
}

/**
 * The command line that runs a TypeScript program file on `runtime` with `args`. Deno gets the
 * permissions a server needs (the edge test narrows them itself); Node strips types by itself (22.18+).
 */
export const command = (runtime: RuntimeName, file: string, args: ReadonlyArray<string> = []) => {
  const bin = executable(runtime)
  switch (runtime) {
    case "bun":
      return [bin, file, ...args]
    case "deno":
      return [bin, "run", "--quiet", "--allow-all", file, ...args]
    default:
      return [bin, "--disable-warning=ExperimentalWarning", file, ...args]
  }
}

if (import.meta.main) {
  for (const runtime of allRuntimes) console.log(`${runtime}: ${executable(runtime)}`)
}
