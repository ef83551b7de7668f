/**
 * The image's HEALTHCHECK. One image runs three programs, so the probe looks at the container's command
 * (`/proc/1/cmdline`, which under `docker run --init` is tini's and still names the program) to pick its
 * target: the worker's `/health` on WORKER_METRICS_PORT (default 9091), nothing for the one-shot migrate,
 * otherwise the API's `/health` on PORT (default 8080). HEALTHCHECK_URL overrides the choice; "none" turns
 * the probe into a no-op. Exits 0 when the target answers 2xx within 4 seconds, 1 otherwise.
 */
import { readFileSync } from "node:fs"

type Env = Readonly<Record<string, string | undefined>>

/** The URL to probe for a container running `command`, or undefined when there is nothing to probe. */
export const healthUrl = (env: Env, command: ReadonlyArray<string>): string | undefined => {
  const override = env.HEALTHCHECK_URL?.trim()
  if (override !== undefined && override !== "") return override === "none" ? undefined : override
  const program = command.map((arg) => arg.replace(/^.*\//, "").replace(/\.ts$/, ""))
  if (program.includes("migrate")) return undefined
  if (program.includes("worker")) {
    const port = env.WORKER_METRICS_PORT?.trim() || "9091"
    return port === "0" ? undefined : `http://127.0.0.1:${port}/health`
  }
  return `http://127.0.0.1:${env.PORT?.trim() || "8080"}/health`
}

const containerCommand = (): ReadonlyArray<string> => {
  try {
    return readFileSync("/proc/1/cmdline", "utf8")
      .split("\0")
      .filter((arg) => arg !== "")
  } catch {
    return []
  }
}

/** Probes the URL; answers the exit code. */
export const probe = async (url: string | undefined, timeoutMs = 4000): Promise<number> => {
  if (url === undefined) return 0
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
    if (response.ok) return 0
    console.error(`${url} answered ${response.status}: ${(await response.text()).slice(0, 300)}`)
  } catch (error) {
    console.error(`${url}: ${error instanceof Error ? error.message : String(error)}`)
  }
  return 1
}

if (import.meta.main) process.exit(await probe(healthUrl(process.env, containerCommand())))
