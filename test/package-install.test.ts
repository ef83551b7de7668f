/**
 * The package as a user gets it: `npm pack` (whose `prepack` builds dist/ with tsc), installed from the
 * tarball into a fresh project, then imported by its package name from Node 22, Node 24, Deno and Bun.
 * On each, a small program (test/fixtures/consumer/enqueue-and-work.mjs) migrates the test database,
 * enqueues and cancels through the API's web handler and runs a job with the worker pool. Node's module
 * hooks then list what each entry loads: the core pulls in neither the worker nor the HTTP API.
 *
 * The install uses the registry npm is configured with, at the versions of this repository's lockfile
 * (pinned with `overrides`), from npm's cache where it has them.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { freshDatabase } from "./support/database.ts"
import { command, executable, type RuntimeName } from "./support/runtimes.ts"

const root = fileURLToPath(new URL("..", import.meta.url))
const fixtures = join(root, "test/fixtures/consumer")
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  name: string
  dependencies: Record<string, string>
  peerDependencies: Record<string, string>
  devDependencies: Record<string, string>
  exports: Record<string, string | { types: string; import: string }>
}

const db = await freshDatabase(import.meta.file)
const work = mkdtempSync(join(tmpdir(), "jobq-package-"))
const project = join(work, "consumer")
let packedFiles: Array<string> = []

const { DATABASE_URL: _, TEST_DATABASE_URL: __, ...baseEnv } = process.env
const quietNpm = { ...baseEnv, npm_config_update_notifier: "false", npm_config_fund: "false" }

const run = async (argv: Array<string>, cwd: string, env: Record<string, string | undefined> = quietNpm) => {
  const child = Bun.spawn(argv, { cwd, env, stdout: "pipe", stderr: "pipe" })
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited
  ])
  if (code !== 0) throw new Error(`${argv.join(" ")} exited ${code}\n${stderr}\n${stdout}`)
  return stdout
}

/** Every package this repository's lockfile installs for production, at its locked version. */
const lockedVersions = () => {
  const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as {
    packages: Record<string, { version?: string; dev?: boolean }>
  }
  const pinned: Record<string, string> = {}
  for (const [path, entry] of Object.entries(lock.packages)) {
    const name = path.replace(/^node_modules\//, "")
    if (!path.startsWith("node_modules/") || name.includes("/node_modules/")) continue
    if (entry.dev === true || entry.version === undefined) continue
    pinned[name] = entry.version
  }
  return pinned
}

beforeAll(async () => {
  // npm pack runs prepack (tsc -p tsconfig.build.json into dist/)
  const [packed] = JSON.parse(
    await run(["npm", "pack", "--json", "--pack-destination", work], root)
  ) as Array<{
    filename: string
    files: Array<{ path: string }>
  }>
  packedFiles = packed!.files.map((f) => f.path)
  const tarball = join(work, packed!.filename)
  const direct = { [pkg.name]: `file:${tarball}`, effect: pkg.devDependencies.effect! }
  const overrides = Object.fromEntries(Object.entries(lockedVersions()).filter(([name]) => !(name in direct)))
  mkdirSync(project)
  writeFileSync(
    join(project, "package.json"),
    JSON.stringify(
      { name: "consumer", private: true, type: "module", dependencies: direct, overrides },
      null,
      2
    )
  )
  await run(
    ["npm", "install", "--prefer-offline", "--no-audit", "--no-fund", "--engine-strict=false"],
    project
  )
  for (const file of ["enqueue-and-work.mjs", "import-graph.mjs", "typed.ts"])
    copyFileSync(join(fixtures, file), join(project, file))
}, 240_000)

afterAll(async () => {
  rmSync(work, { recursive: true, force: true })
  await db.drop()
})

describe("npm pack", () => {
  it("ships the built JavaScript and declarations, the migrations, the prebuilt dashboard, README and LICENSE, and no sources", () => {
    const strays = packedFiles.filter(
      (f) => !/^(dist|migrations|ui\/dist)\//.test(f) && !["package.json", "README.md", "LICENSE"].includes(f)
    )
    expect(strays).toEqual([])
    for (const asset of ["index.html", "app.js", "app.css"]) expect(packedFiles).toContain(`ui/dist/${asset}`)
    expect(packedFiles.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))).toEqual([])
    for (const [subpath, target] of Object.entries(pkg.exports)) {
      if (typeof target === "string") continue
      expect({ subpath, types: packedFiles.includes(target.types.slice(2)) }).toEqual({
        subpath,
        types: true
      })
      expect({ subpath, js: packedFiles.includes(target.import.slice(2)) }).toEqual({ subpath, js: true })
    }
    for (const migration of readdirSync(join(root, "migrations"))) {
      expect(packedFiles).toContain(`migrations/${migration}`)
    }
  })
})

describe("the installed package", () => {
  it("has declarations a TypeScript user compiles against (tsc, module nodenext)", async () => {
    const tsc = join(root, "node_modules/typescript/bin/tsc")
    const flags = ["--noEmit", "--strict", "--module", "nodenext", "--target", "es2022", "--skipLibCheck"]
    await run([executable("node24"), tsc, ...flags, "typed.ts"], project, baseEnv)
  }, 60_000)

  const runtimes: ReadonlyArray<RuntimeName> = ["node22", "node24", "deno", "bun"]
  for (const runtime of runtimes) {
    it(`on ${runtime}: migrates, enqueues and cancels through the API handler, and a worker runs the job`, async () => {
      executable(runtime) // fetch outside the timed part
      const out = await run(command(runtime, "enqueue-and-work.mjs"), project, {
        ...baseEnv,
        DATABASE_URL: db.url,
        CONSUMER_LABEL: runtime
      })
      expect(JSON.parse(out.trim().split("\n").at(-1)!)).toEqual({
        health: 200,
        enqueued: 201,
        cancelled: [200, "cancelled"],
        ran: ["succeeded", { hello: runtime }]
      })
    }, 60_000)
  }
})

describe("what each entry loads (Node's resolve hook, in the installed package)", () => {
  const loaded = async (specifier: string) => {
    const out = await run([executable("node24"), "import-graph.mjs", specifier], project, baseEnv)
    const prefix = `file://${project}/node_modules/`
    return (JSON.parse(out) as Array<string>)
      .filter((url) => url.startsWith(prefix))
      .map((url) => url.slice(prefix.length))
  }
  const own = (path: string) => path.startsWith(`${pkg.name}/dist/`)
  const under = (folder: string) => (path: string) => path.startsWith(`${pkg.name}/dist/${folder}/`)
  const httpApi = (p: string) => p.startsWith("effect/dist/http-api/")
  const otel = (p: string) => /^@(effect\/)?opentelemetry\//.test(p)
  const platformNode = (p: string) => p.startsWith("@effect/platform-node")
  const pglite = (p: string) => p.startsWith("@electric-sql/pglite")

  it("the core loads the queue, but no worker, HTTP API, server, telemetry, platform-node or PGlite", async () => {
    const paths = await loaded(pkg.name)
    expect(paths).toContain(`${pkg.name}/dist/index.js`)
    expect(paths).toContain(`${pkg.name}/dist/queue/Queue.js`)
    const forbidden = paths.filter(
      (p) =>
        under("worker")(p) ||
        under("http")(p) ||
        under("platform")(p) ||
        httpApi(p) ||
        otel(p) ||
        platformNode(p) ||
        pglite(p)
    )
    expect(forbidden).toEqual([])
  })

  it("the worker loads no HTTP API code, and not Node's server until one is started", async () => {
    const paths = await loaded(`${pkg.name}/worker`)
    expect(paths).toContain(`${pkg.name}/dist/worker/WorkerPool.js`)
    const forbidden = paths.filter(
      (p) =>
        under("http")(p) ||
        httpApi(p) ||
        platformNode(p) ||
        pglite(p) ||
        p === `${pkg.name}/dist/platform/NodeServer.js`
    )
    expect(forbidden).toEqual([])
  })

  it("the API loads the HTTP API but no worker code, PGlite or platform-node", async () => {
    const paths = await loaded(`${pkg.name}/api`)
    expect(paths.some(httpApi)).toBe(true)
    expect(paths.filter((p) => under("worker")(p) || platformNode(p) || pglite(p))).toEqual([])
    expect(paths.filter(own).length).toBeGreaterThan(10)
  })
})
