/**
 * Which runtime runs our programs in a benchmark: BENCH_RUNTIME (bun, the default; node22, node24, deno), the
 * same binaries the tests use (test/support/runtimes.ts: from npm). The harness itself always runs on Bun.
 */
import { readFileSync } from "node:fs"
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
 * programs as `npm run worker` and the image do; nothing on the other runtimes.
 */
export const environment = (file: string): Record<string, string> => {
  if (current() !== "bun") return {}
  const scripts = (
    JSON.parse(readFileSync(`${rootDirectory}package.json`, "utf8")) as {
      scripts: Record<string, string>
    }
  ).scripts
  const script = Object.values(scripts).find((s) => {
    const { command } = splitScript(s)
    return command[0] === "bun" && command.at(-1) === file
  })
  if (script === undefined) throw new Error(`no package.json script runs ${file} on Bun`)
  return splitScript(script).env
}
