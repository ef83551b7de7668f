/**
 * wrk, a load generator written in C (Debian's `wrk` package), for the closed-loop HTTP measurement that
 * sits beside pgbench: both clients are native programs, so the comparison is of the servers rather than
 * of the clients. Our own load generator (`HttpLoad`, Bun fetch) costs the 2 shared cores more CPU per
 * request than the API's own handler does.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import type { LoadResult } from "./HttpLoad.ts"

const candidates = ["wrk", "/usr/bin/wrk"]

const versionOf = async (binary: string) => {
  try {
    const child = Bun.spawn([binary, "--version"], { stdout: "pipe", stderr: "pipe" })
    const text = (await new Response(child.stdout).text()) + (await new Response(child.stderr).text())
    await child.exited
    const match = /wrk (\S+)/.exec(text)
    return match === null ? undefined : match[1]
  } catch {
    return undefined
  }
}

/** wrk's path and version; on a Debian machine where it is missing and we are root, installs it first. */
export const find = async (log: (line: string) => void) => {
  for (const candidate of candidates) {
    const version = await versionOf(candidate)
    if (version !== undefined) return { path: candidate, version }
  }
  if (process.getuid?.() !== 0 || Bun.which("apt-get") === null) return undefined
  log("wrk is missing: installing Debian's wrk package")
  const install = Bun.spawn(["apt-get", "install", "-y", "-qq", "wrk"], {
    stdout: "ignore",
    stderr: "ignore"
  })
  if ((await install.exited) !== 0) return undefined
  const version = await versionOf("/usr/bin/wrk")
  return version === undefined ? undefined : { path: "/usr/bin/wrk", version }
}

const luaString = (value: string) => `"${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`

/** Seconds as wrk prints a latency ("812.00us", "1.20ms", "2.00s"), in ms. */
const milliseconds = (text: string) => {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text)
  if (match === null) throw new Error(`unreadable wrk latency: ${text}`)
  const value = Number(match[1])
  return match[2] === "us"
    ? value / 1000
    : match[2] === "ms"
      ? value
      : match[2] === "s"
        ? value * 1000
        : value * 60_000
}

/** `POST url` with a JSON body from `connections` keep-alive connections for `seconds` (2 threads). */
export const closedLoop = async (
  binary: string,
  options: {
    readonly url: string
    readonly body: string
    readonly connections: number
    readonly seconds: number
  }
): Promise<LoadResult> => {
  if (new URL(options.url).hostname !== "127.0.0.1") throw new Error("load only targets 127.0.0.1")
  const directory = mkdtempSync(`${tmpdir()}/jobq-wrk-`)
  const script = `${directory}/post.lua`
  writeFileSync(
    script,
    [
      'wrk.method = "POST"',
      `wrk.body = ${luaString(options.body)}`,
      'wrk.headers["Content-Type"] = "application/json"'
    ].join("\n")
  )
  try {
    const child = Bun.spawn(
      [
        binary,
        "-t2",
        `-c${options.connections}`,
        `-d${options.seconds}s`,
        "--latency",
        "--timeout",
        "10s",
        "-s",
        script,
        options.url
      ],
      { stdout: "pipe", stderr: "pipe" }
    )
    const output = await new Response(child.stdout).text()
    if ((await child.exited) !== 0) throw new Error(`wrk failed: ${await new Response(child.stderr).text()}`)
    const requests = Number(/(\d+) requests in ([\d.]+)(\w+)/.exec(output)?.[1])
    const perSecond = Number(/Requests\/sec:\s+([\d.]+)/.exec(output)?.[1])
    const percentile = (p: string) =>
      milliseconds(new RegExp(`^\\s+${p}%\\s+(\\S+)`, "m").exec(output)?.[1] ?? "")
    const max = milliseconds(/^\s+Latency\s+\S+\s+\S+\s+(\S+)/m.exec(output)?.[1] ?? "")
    const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0)
    const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output)
    const errors =
      non2xx + (socketErrors === null ? 0 : socketErrors.slice(1).reduce((a, b) => a + Number(b), 0))
    if (!Number.isFinite(requests) || !Number.isFinite(perSecond))
      throw new Error(`unreadable wrk output:\n${output}`)
    return {
      requests,
      errors,
      seconds: requests / perSecond,
      perSecond,
      // wrk reports the 50th, 75th, 90th and 99th percentiles, not the 95th
      latencyMs: { count: requests, p50: percentile("50"), p95: Number.NaN, p99: percentile("99"), max }
    }
  } finally {
    rmSync(directory, { recursive: true, force: true })
  }
}
