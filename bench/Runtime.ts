/**
 * Which runtime runs our programs in a benchmark: BENCH_RUNTIME (bun, the default; node22, node24, deno), the
 * same binaries the tests use (test/support/runtimes.ts: from npm). The harness itself always runs on Bun.
 */
import { command, type RuntimeName } from "../test/support/runtimes.ts"

const names: ReadonlyArray<RuntimeName> = ["bun", "node22", "node24", "deno"]

export const current = (): RuntimeName => {
  const given = process.env.BENCH_RUNTIME ?? "bun"
  if (!(names as ReadonlyArray<string>).includes(given))
    throw new Error(`BENCH_RUNTIME=${given} is not one of ${names.join(", ")}`)
  return given as RuntimeName
}

/** The command line that runs `file` (e.g. `src/worker.ts`) on the current runtime. */
export const program = (file: string): Array<string> => command(current(), file)
