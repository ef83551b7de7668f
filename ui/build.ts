/**
 * Builds the dashboard into ui/dist (committed): index.html, app.js (one minified bundle: Preact, uPlot,
 * the pages), app.css (ours and uPlot's). Run by `npm run ui:build`; test/ui/bundle.test.ts rebuilds it and
 * fails when the committed files differ, so ui/dist never goes stale. Bun (pinned in devDependencies)
 * bundles: no other build tool, and a user never runs this.
 *
 *   bun run ui/build.ts            writes ui/dist
 *   bun run ui/build.ts --out DIR  writes DIR (the freshness test)
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"

const root = new URL(".", import.meta.url).pathname
const outFlag = process.argv.indexOf("--out")
const out = outFlag >= 0 ? process.argv[outFlag + 1]! : join(root, "dist")

export const build = async (directory: string) => {
  const result = await Bun.build({
    entrypoints: [join(root, "src/main.tsx")],
    target: "browser",
    format: "esm",
    minify: true,
    sourcemap: "none",
    tsconfig: join(root, "tsconfig.json"),
    define: { "process.env.NODE_ENV": '"production"' }
  } as Parameters<typeof Bun.build>[0])
  if (!result.success) throw new AggregateError(result.logs, "the dashboard's bundle failed to build")
  const js = await result.outputs[0]!.text()
  const css = [
    readFileSync(join(root, "src/app.css"), "utf8"),
    readFileSync(join(root, "../node_modules/uplot/dist/uPlot.min.css"), "utf8")
  ].join("\n")
  mkdirSync(directory, { recursive: true })
  writeFileSync(join(directory, "app.js"), js)
  writeFileSync(join(directory, "app.css"), css)
  writeFileSync(join(directory, "index.html"), readFileSync(join(root, "index.html"), "utf8"))
}

if (import.meta.main) await build(out)
