/**
 * ui/dist is committed (a user never builds the dashboard): rebuilding it from ui/src with the pinned Bun
 * must give the same bytes, so a change to the dashboard's source that was not rebuilt (`npm run ui:build`)
 * fails here.
 */
import { describe, expect, it } from "bun:test"
import { mkdtempSync, readdirSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, relative, resolve } from "node:path"

const dist = join(import.meta.dir, "../../ui/dist")

describe("ui/dist", () => {
  it("is what ui/build.ts makes of ui/src today", async () => {
    const out = mkdtempSync(join(tmpdir(), "jobq-ui-build-"))
    const build = Bun.spawn(
      [process.execPath, "run", join(import.meta.dir, "../../ui/build.ts"), "--out", out],
      {
        stdout: "pipe",
        stderr: "pipe"
      }
    )
    expect(await build.exited).toBe(0)
    for (const file of ["index.html", "app.js", "app.css"]) {
      const fresh = readFileSync(join(out, file), "utf8")
      const committed = readFileSync(join(dist, file), "utf8")
      if (fresh !== committed) throw new Error(`ui/dist/${file} is stale: run npm run ui:build and commit it`)
      expect(fresh.length).toBeGreaterThan(0)
    }
  })
})

describe("ui/src", () => {
  it("imports nothing from src/: only its own modules, its packages and the types generated from the OpenAPI document", () => {
    const uiSource = join(import.meta.dir, "../../ui/src")
    const repository = resolve(import.meta.dir, "../..")
    const generated = "test/api/client/schema.ts"
    // every specifier, type-only imports included (a transpiler's scan drops those)
    const specifiers = /\b(?:from|import)\s*\(?\s*["']([^"']+)["']/g
    const files = readdirSync(uiSource, { recursive: true, encoding: "utf8" }).filter((f) =>
      /\.tsx?$/.test(f)
    )
    expect(files.length).toBeGreaterThan(5)
    const strays: Array<string> = []
    for (const file of files) {
      const path = join(uiSource, file)
      for (const [, target = ""] of readFileSync(path, "utf8").matchAll(specifiers)) {
        if (!target.startsWith(".")) continue // a package
        const resolved = relative(repository, resolve(dirname(path), target))
        if (!resolved.startsWith("ui/src/") && resolved !== generated) strays.push(`${file} -> ${resolved}`)
      }
    }
    expect(strays).toEqual([])
  })
})
