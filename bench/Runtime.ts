/**
 * Which runtime runs our programs in a benchmark: BENCH_RUNTIME (bun, the default; node22, node24, deno), the
 * same binaries the tests use (test/support/runtimes.ts: from npm). The harness itself always runs on Bun.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { command, type RuntimeName, splitScript } from "../test/support/runtimes.ts"
import { rootDirectory } from "./BenchDependencies.ts"

const names: ReadonlyArray<RuntimeName> = ["bun", "node22", "node24", "deno"]

export const current = (): RuntimeName => {
  const given = process.env.BENCH_RUNTIME ?? "bun"
  if (!(names as ReadonlyArray<string>).includes(given))
    throw new Error(`BENCH_RUNTIME=${given} is not one of ${names.join(", ")}`)
  return given as RuntimeName
}

/** The command line that runs `file` (e.g. `src/worker.ts`) on the current runtime. */
export const program = (file: string): Array<string> => command(current(), file)

/**
 * What the package.json script that starts `file` on Bun sets before its command (`NAME=value bun run
 * src/worker.ts`: the JavaScriptCore tier-up setting the image sets too), so that a benchmark runs our
 * programs as `npm run worker` and the image do; nothing on the other runtimes. Read from the checkout that
 * runs the program (`root`: another one for a paired before/after run). Spread after the harness's own
 * environment, as a script's assignment overrides an inherited variable.
 */
export const environment = (
  file: string,
  root: string = rootDirectory,
  runtime: RuntimeName = current()
): Record<string, string> => {
  if (runtime !== "bun") return {}
  const scripts = (
    JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }
  ).scripts
  const script = Object.values(scripts).find((s) => {
    const { command } = splitScript(s)
    return command[0] === "bun" && command.at(-1) === file
  })
  // a checkout from before the scripts set anything runs its programs without it
  return script === undefined ? {} : splitScript(script).env
}
