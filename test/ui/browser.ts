/**
 * The dashboard's browser-test rig: a fresh database, the real service (`src/dev.ts`: API and worker in one
 * process, on Postgres) on a free port with full and read-only tokens, and Debian's Chromium driven by
 * playwright-core. `.ci/run` installs Chromium when it is missing; CHROMIUM_PATH overrides where it is.
 */
import { afterAll } from "bun:test"
import { existsSync, mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core"
import { freshDatabase } from "../support/database.ts"
import { freePort, waitUntilHealthy } from "../support/ports.ts"
import { spawnProgram } from "../support/processes.ts"

export const fullToken = "ui-full-token"
export const readToken = "ui-read-token"
/** The rig's DASHBOARD_TRACE_URL. */
export const traceUrl = "https://traces.example/trace/{traceId}"
export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium"
const axeSource = readFileSync(fileURLToPath(import.meta.resolve("axe-core/axe.min.js")), "utf8")
const kindsModule = fileURLToPath(new URL("../fixtures/dashboardKinds.ts", import.meta.url))

export interface Rig {
  readonly base: string
  /** The service's database (for a test that sets up what no endpoint writes, such as a trace context). */
  readonly databaseUrl: string
  readonly browser: Browser
  readonly scratch: string
  /** A new browser context (its own session storage) holding `token`, scheme `light` unless told. */
  readonly context: (
    token?: string,
    options?: { readonly colorScheme?: "light" | "dark" }
  ) => Promise<BrowserContext>
  /** A request to the API with a token (default: the full one). */
  readonly request: (path: string, init?: RequestInit & { readonly token?: string }) => Promise<Response>
}

/** `cleanup` registers the teardown: bun:test's `afterAll` in a test file, a list of its own in a script. */
export const startRig = async (
  label: string,
  cleanup: (fn: () => Promise<void>) => void = afterAll
): Promise<Rig> => {
  if (!existsSync(chromiumPath))
    throw new Error(
      `no Chromium at ${chromiumPath}: apt-get install -y chromium (.ci/run does), or set CHROMIUM_PATH`
    )
  const db = await freshDatabase(label)
  const port = freePort()
  const program = spawnProgram("src/dev.ts", {
    ...process.env,
    DATABASE_URL: db.url,
    DATABASE_POOL_MAX: "6",
    PORT: String(port),
    API_TOKENS: fullToken,
    API_READ_TOKENS: readToken,
    API_STATS_INTERVAL: "1 second",
    JOBS_MODULE: kindsModule,
    WORKER_CONCURRENCY: "8",
    LOG_LEVEL: "Warning",
    DASHBOARD_TRACE_URL: traceUrl
  })
  const base = `http://127.0.0.1:${port}`
  try {
    await waitUntilHealthy(`${base}/health`, 30_000)
  } catch (error) {
    program.process.kill("SIGKILL")
    throw new Error(`${String(error)}; stderr: ${program.stderr().slice(-2000)}`)
  }
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
  })
  cleanup(async () => {
    await browser.close()
    program.process.kill("SIGTERM")
    await Promise.race([program.process.exited, Bun.sleep(10_000)])
    program.process.kill("SIGKILL")
    await db.drop()
  })
  return {
    base,
    databaseUrl: db.url,
    browser,
    scratch: mkdtempSync(join(tmpdir(), "jobq-ui-")),
    context: async (token, options = {}) => {
      const context = await browser.newContext({
        viewport: { width: 1280, height: 800 },
        colorScheme: options.colorScheme ?? "light"
      })
      if (token !== undefined)
        await context.addInitScript((value) => sessionStorage.setItem("jobq.token", value), token)
      context.setDefaultTimeout(10_000)
      return context
    },
    request: (path, init = {}) => {
      const { token = fullToken, ...rest } = init
      return fetch(`${base}${path}`, {
        ...rest,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...rest.headers }
      })
    }
  }
}

/** axe-core's serious and critical violations on the page as it stands (none expected). */
export const axeViolations = async (page: Page) => {
  await page.evaluate(axeSource)
  const result = (await page.evaluate(() =>
    (
      window as unknown as { axe: { run: (context: Document, options: unknown) => Promise<unknown> } }
    ).axe.run(document, { resultTypes: ["violations"] })
  )) as { violations: Array<{ id: string; impact: string; help: string; nodes: Array<{ target: unknown }> }> }
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map(
      (v) => `${v.impact} ${v.id}: ${v.help} at ${JSON.stringify(v.nodes.slice(0, 3).map((n) => n.target))}`
    )
}

/** Waits for a condition that reads the API, failing after `timeoutMs` with what it last saw. */
export const eventually = async <A>(
  read: () => Promise<A>,
  ok: (value: A) => boolean,
  timeoutMs = 15_000
) => {
  const deadline = Date.now() + timeoutMs
  let last: A | undefined
  for (;;) {
    last = await read()
    if (ok(last)) return last
    if (Date.now() > deadline)
      throw new Error(`not reached within ${timeoutMs} ms; last: ${JSON.stringify(last)}`)
    await Bun.sleep(100)
  }
}
