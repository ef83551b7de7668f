import { afterAll, describe, expect, it } from "bun:test"
import { fileURLToPath } from "node:url"
import { emptyDatabase } from "./support/database.ts"

const db = await emptyDatabase(import.meta.file)
afterAll(() => db.drop())
const root = fileURLToPath(new URL("..", import.meta.url))

describe("examples", () => {
  it("embed-worker migrates, runs its own kind in an embedded pool and exits 0", async () => {
    const child = Bun.spawn([process.execPath, "examples/embed-worker.ts"], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: db.url },
      stdout: "pipe",
      stderr: "pipe"
    })
    const [code, stdout] = await Promise.all([child.exited, new Response(child.stdout).text()])
    expect(code).toBe(0)
    expect(stdout).toContain("3 jobs succeeded")
    expect(stdout).toContain('{"deliveredTo":"grace@example.com"}')
  })
})
