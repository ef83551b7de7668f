/**
 * What ships: the Docker image and Compose stack run programs that exist and that package.json names, every
 * setting the programs read is documented and reachable through Compose. No database and no Docker engine
 * needed. (The npm package: test/package-install.test.ts.)
 */
import { describe, expect, it } from "bun:test"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { dirname, join, normalize } from "node:path"
import { fileURLToPath } from "node:url"
import { healthUrl, probe } from "../docker/healthcheck.ts"
import { splitScript } from "./support/runtimes.ts"

const root = fileURLToPath(new URL("..", import.meta.url))
const read = (path: string) => readFileSync(join(root, path), "utf8")
const pkg = JSON.parse(read("package.json")) as {
  name: string
  engines: Record<string, string>
  files: Array<string>
  scripts: Record<string, string>
  devDependencies: Record<string, string>
}
const dockerfile = read("Dockerfile")
const compose = Bun.YAML.parse(read("docker-compose.yml")) as {
  services: Record<
    string,
    {
      command?: Array<string>
      environment?: Record<string, string | number>
      build?: unknown
      image?: string
      pull_policy?: string
      ports?: Array<string>
    }
  >
}
/** The services that run our image (every one but Postgres). */
const programServices = Object.entries(compose.services).filter(([, s]) =>
  s.image?.startsWith(`${pkg.name}:`)
)

/** `[NAME=value ...] bun [run] <file.ts | script>` -> the .ts file it runs, following a package.json script once. */
const programOf = (command: ReadonlyArray<string>): string => {
  const words = splitScript(command.join(" ")).command
  const args = words[0] === "bun" ? words.slice(1) : [...words]
  const target = args[0] === "run" ? args[1] : args[0]
  if (target === undefined) throw new Error(`no program in ${JSON.stringify(command)}`)
  if (target.endsWith(".ts")) return target
  const script = pkg.scripts[target]
  if (script === undefined) throw new Error(`"${target}" is neither a file nor a package.json script`)
  return programOf(script.split(/\s+/))
}

const transpiler = new Bun.Transpiler({ loader: "ts" })

/**
 * What a program loads: the source files reached through its static imports (type-only imports are not
 * imports), and every package those files import, statically or dynamically.
 */
const closure = (entry: string) => {
  const files = new Set<string>()
  const packages = new Set<string>()
  const visit = (file: string) => {
    if (files.has(file)) return
    files.add(file)
    for (const { path, kind } of transpiler.scanImports(read(file))) {
      if (path.startsWith(".")) {
        if (kind === "import-statement") visit(normalize(join(dirname(file), path)))
      } else if (!path.startsWith("node:") && path !== "bun" && !path.startsWith("bun:")) {
        packages.add(path)
      }
    }
  }
  visit(entry)
  return { files, packages }
}

/** Instructions of the Dockerfile, continuation lines joined, comments dropped. */
const instructions = dockerfile
  .replace(/\\\n/g, " ")
  .split("\n")
  .map((line) => line.trim())
  .filter((line) => line !== "" && !line.startsWith("#"))

describe("the image and the compose stack", () => {
  const cmd = instructions.filter((i) => i.startsWith("CMD ")).at(-1)
  const imageCommand = JSON.parse(cmd!.slice(4)) as Array<string>
  const composeCommands = programServices.map(([name, s]) => [name, s.command ?? imageCommand] as const)

  it("compose builds the image once and runs it in every program without pulling it", () => {
    const builders = programServices.filter(([, s]) => s.build !== undefined).map(([name]) => name)
    expect(builders).toEqual(["migrate"])
    for (const [name, service] of programServices) {
      if (name !== "migrate") expect({ name, pull: service.pull_policy }).toEqual({ name, pull: "never" })
    }
  })

  it("compose publishes ports on the loopback interface unless told otherwise, and Postgres not at all", () => {
    expect(compose.services.postgres?.ports).toBeUndefined()
    const published = programServices.flatMap(([, s]) => s.ports ?? [])
    expect(published.length).toBe(2)
    for (const mapping of published) expect(mapping).toMatch(/^\$\{[A-Z_]+_HOST_BIND:-127\.0\.0\.1\}:/)
  })

  it("every program the image and compose run exists, and package.json has a script for it", () => {
    const commands = [["image CMD", imageCommand] as const, ...composeCommands]
    expect(composeCommands.map(([name]) => name).sort()).toEqual(["api", "migrate", "worker"])
    const scriptTargets = new Set(Object.values(pkg.scripts).map((s) => s.split(/\s+/).at(-1)))
    for (const [name, command] of commands) {
      const program = programOf(command)
      expect({ name, program, exists: existsSync(join(root, program)) }).toEqual({
        name,
        program,
        exists: true
      })
      expect({ name, program, script: scriptTargets.has(program) }).toEqual({ name, program, script: true })
    }
    for (const script of ["api", "worker", "migrate"]) {
      expect(existsSync(join(root, programOf(["bun", "run", script])))).toBe(true)
    }
  })

  it("the image and every npm script that starts a program on Bun set the same JavaScriptCore tier-up", () => {
    // docs/tradeoffs.md, "JIT tiering": one setting, wherever our programs start on Bun
    const imageEnv = Object.fromEntries(
      instructions
        .filter((i) => i.startsWith("ENV BUN_JSC_"))
        .map((i) => i.slice(4).split("=") as [string, string])
    )
    expect(Object.keys(imageEnv)).toEqual(["BUN_JSC_thresholdForFTLOptimizeAfterWarmUp"])
    const bunScripts = Object.entries(pkg.scripts).filter(([, s]) =>
      /^bun run src\/\w+\.ts$/.test(splitScript(s).command.join(" "))
    )
    expect(bunScripts.map(([name]) => name).sort()).toEqual(["api", "migrate", "start", "worker"])
    for (const [name, script] of bunScripts) {
      const { env } = splitScript(script)
      expect({ name, env }).toEqual({ name, env: imageEnv })
    }
  })

  it("the runtime image is the Bun that package.json pins and that satisfies engines.bun", () => {
    const version = /^ARG BUN_VERSION=(\S+)$/m.exec(dockerfile)?.[1]
    expect(version).toBe(pkg.devDependencies.bun)
    expect(Bun.semver.satisfies(version!, pkg.engines.bun!)).toBe(true)
    expect(instructions.some((i) => /^FROM oven\/bun:\$\{BUN_VERSION\}\S* AS runtime$/.test(i))).toBe(true)
    expect(instructions.filter((i) => i.startsWith("USER ")).at(-1)).toBe("USER bun")
  })

  it("everything the image copies from the build context exists and passes .dockerignore", () => {
    const allowed = read(".dockerignore")
      .split("\n")
      .filter((line) => line.startsWith("!"))
      .map((line) => line.slice(1))
    const sources = instructions
      .filter((i) => i.startsWith("COPY ") && !i.includes("--from="))
      .flatMap((i) => i.split(/\s+/).slice(1, -1))
    expect(sources.length).toBeGreaterThan(3)
    for (const source of sources) {
      expect({ source, exists: existsSync(join(root, source)), allowed: allowed.includes(source) }).toEqual({
        source,
        exists: true,
        allowed: true
      })
    }
    const healthcheck = instructions.find((i) => i.startsWith("HEALTHCHECK "))!
    expect(JSON.parse(healthcheck.slice(healthcheck.indexOf("CMD ") + 4))).toEqual([
      "bun",
      "docker/healthcheck.ts"
    ])
  })

  it("the image leaves out only packages that none of its programs imports", () => {
    const removed = [
      ...instructions
        .filter((i) => i.startsWith("RUN "))
        .join(" ")
        .matchAll(/node_modules\/((?:@[\w.-]+\/)?[\w.-]+)(?=\s|$)/g)
    ].map((m) => m[1]!)
    expect(removed).toContain("@electric-sql/pglite")
    for (const [name, command] of [["image CMD", imageCommand] as const, ...composeCommands]) {
      const { packages } = closure(programOf(command))
      const used = [...packages].filter((p) => removed.some((r) => p === r || p.startsWith(`${r}/`)))
      expect({ name, used }).toEqual({ name, used: [] })
    }
  })

  it("the healthcheck probes the program the container runs", () => {
    const byService = Object.fromEntries(
      composeCommands.map(([name, command]) => [
        name,
        healthUrl({ PORT: "8080", WORKER_METRICS_PORT: "9091" }, ["/sbin/docker-init", "--", ...command])
      ])
    )
    expect(byService).toEqual({
      api: "http://127.0.0.1:8080/health",
      worker: "http://127.0.0.1:9091/health",
      migrate: undefined
    })
    expect(healthUrl({}, [])).toBe("http://127.0.0.1:8080/health")
    expect(healthUrl({ PORT: "3000" }, ["bun", "src/api.ts"])).toBe("http://127.0.0.1:3000/health")
    expect(healthUrl({ WORKER_METRICS_PORT: "0" }, ["bun", "run", "worker"])).toBeUndefined()
    expect(healthUrl({ HEALTHCHECK_URL: "http://x/h" }, ["bun", "src/worker.ts"])).toBe("http://x/h")
    expect(healthUrl({ HEALTHCHECK_URL: "none" }, ["bun", "src/api.ts"])).toBeUndefined()
  })

  it("the healthcheck passes on 2xx only, and fails on an error status or a closed port", async () => {
    let status = 200
    const server = Bun.serve({ port: 0, fetch: () => new Response("{}", { status }) })
    try {
      const url = `http://127.0.0.1:${server.port}/health`
      expect(await probe(url)).toBe(0)
      status = 503
      expect(await probe(url)).toBe(1)
    } finally {
      await server.stop(true)
    }
    expect(await probe(`http://127.0.0.1:${server.port}/health`, 1000)).toBe(1)
    expect(await probe(undefined)).toBe(0)
  })
})

const sourceFiles = () => {
  const files: Array<string> = []
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`
      if (entry.isDirectory()) walk(path)
      else if (entry.name.endsWith(".ts")) files.push(path)
    }
  }
  walk("src")
  return files
}

/** Every environment variable this source text reads. */
const variablesIn = (text: string) => {
  const patterns = [
    /Config\.\w+\(\s*"([A-Z][A-Z0-9_]*)"/g, // Config.String("NAME")
    /Config\.\w+\(\s*\[[^\]]*\]\s*,\s*"([A-Z][A-Z0-9_]*)"/g, // Config.Literals([...], "NAME")
    /\b(?:duration|optionalDuration|atLeastOne)\(\s*"([A-Z][A-Z0-9_]*)"/g, // the Config.ts helpers
    /(?:process|Bun)\.env\.([A-Z][A-Z0-9_]*)/g,
    /(?:process|Bun)\.env\[\s*"([A-Z][A-Z0-9_]*)"\s*\]/g
  ]
  return new Set(patterns.flatMap((pattern) => [...text.matchAll(pattern)].map((m) => m[1]!)))
}

/** Every environment variable these source files read. */
const variablesReadBy = (files: Iterable<string>) =>
  new Set([...files].flatMap((f) => [...variablesIn(read(f))]))

/**
 * src/Config.ts's services, each with the variables its `fromEnv` layer reads, and its exported readers
 * (`jobsModule`, `loggingSettings`, ...), each with the variables it reads; `used` says how a file uses one.
 */
const configServices = read("src/Config.ts")
  .split(/(?=^export (?:class|const) \w+)/m)
  .slice(1)
  .map((part) => {
    const [, kind, name] = /^export (class|const) (\w+)/.exec(part)!
    const used = kind === "class" ? `${name}.fromEnv` : name!
    return { name: name!, used, variables: variablesIn(part) }
  })

/**
 * What a program reads: the variables of the files it loads, where src/Config.ts counts only for the
 * config services whose `fromEnv` layer those files use (every program loads Config.ts; few use all of it).
 */
const variablesReadByProgram = (files: ReadonlySet<string>) => {
  const others = [...files].filter((f) => f !== "src/Config.ts")
  const text = others.map(read).join("\n")
  const names = variablesReadBy(others)
  for (const service of configServices) {
    if (new RegExp(`\\b${service.used.replace(".", "\\.")}\\b`).test(text))
      for (const v of service.variables) names.add(v)
  }
  return names
}

const envExample = read(".env.example")
const documented = new Set([...envExample.matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]!))

describe("settings", () => {
  const readBySrc = variablesReadBy(sourceFiles())
  // Read, but not settings (none now: WORKER_ID's default asks the OS for the hostname, not $HOSTNAME).
  const notSettings = new Set<string>()

  it("the scan finds the settings we know of (guards the scan itself)", () => {
    for (const name of ["DATABASE_URL", "PORT", "API_TOKENS", "WORKER_SHUTDOWN_GRACE", "JOBS_MODULE"]) {
      expect(readBySrc.has(name)).toBe(true)
    }
  })

  it(".env.example documents every variable the programs read", () => {
    const missing = [...readBySrc].filter((name) => !documented.has(name) && !notSettings.has(name))
    expect(missing).toEqual([])
    for (const name of notSettings) expect(envExample).toContain(name)
  })

  it("compose passes each program every setting it reads, and documents every variable it interpolates", () => {
    // One value for all programs would merge their traces under one service name.
    const perProgram = new Set(["OTEL_SERVICE_NAME"])
    for (const [name, service] of programServices) {
      const passed = new Set(Object.keys(service.environment ?? {}))
      const needed = variablesReadByProgram(closure(programOf(service.command!)).files)
      expect(needed.has("DATABASE_URL")).toBe(true)
      const unreachable = [...needed].filter(
        (n) => !passed.has(n) && !notSettings.has(n) && !perProgram.has(n)
      )
      expect({ name, unreachable }).toEqual({ name, unreachable: [] })
    }
    const interpolated = new Set(
      [...read("docker-compose.yml").matchAll(/\$\{([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]!)
    )
    expect([...interpolated].filter((name) => !documented.has(name))).toEqual([])
  })
})

// The npm package itself (npm pack, the installed tarball, what each entry loads): test/package-install.test.ts

describe("runtimes", () => {
  it("only src/platform/ names a runtime: no Bun or Deno global and no import.meta.main in code elsewhere", () => {
    const named = sourceFiles()
      .filter((file) => !file.startsWith("src/platform/"))
      .flatMap((file) => {
        // the code as it runs: comments and types gone
        const code = transpiler.transformSync(read(file))
        return [
          ...code.matchAll(/\b(?:Bun|Deno)\s*\.\s*\w+|\bimport\.meta\.main\b|\bglobalThis\.(?:Bun|Deno)\b/g)
        ].map((m) => `${file}: ${m[0]}`)
      })
    expect(named).toEqual([])
    // the scan sees what it looks for
    expect(transpiler.transformSync(read("src/platform/BunServer.ts"))).toMatch(/\bBun\.serve\b/)
  })
})
