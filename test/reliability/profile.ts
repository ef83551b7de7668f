/**
 * The reliability suites run in two profiles from the same definitions: `short` (the default, inside
 * `npm test`, seconds per scenario) and `long` (`npm run test:chaos`, which sets RELIABILITY_PROFILE=long:
 * minutes, more jobs, more faults, thousands of fuzz cases). Only the counts and durations differ.
 */
import { appendFileSync } from "node:fs"

export type Profile = "short" | "long"

export const profile: Profile = process.env.RELIABILITY_PROFILE === "long" ? "long" : "short"

/** The short or the long value, by profile. */
export const pick = <A>(short: A, long: A): A => (profile === "long" ? long : short)

/**
 * Prints one result line and, when RELIABILITY_REPORT names a file, appends it there as JSON (the long
 * profile's figures in docs/reliability.md come from that file).
 */
export const report = (suite: string, result: Record<string, unknown>) => {
  const line = { suite, profile, at: new Date().toISOString(), ...result }
  console.log(`[reliability] ${JSON.stringify(line)}`)
  const file = process.env.RELIABILITY_REPORT
  if (file !== undefined && file !== "") appendFileSync(file, `${JSON.stringify(line)}\n`)
}
