/**
 * MAX_PAYLOAD_DEPTH: a body nesting deeper than a payload may is a 422 naming the path, refused before it is
 * parsed; the library refuses such a payload with InvalidPayload. And an abusive body, nested deep or wide,
 * does not hold up anyone else: the API program (Bun, a real socket) keeps answering /health meanwhile.
 */
import { afterAll, describe, expect, it } from "bun:test"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { Queue } from "../../src/queue/Queue.ts"
import { kinds as jsonKinds } from "../fixtures/json-kinds.ts"
import { expectProblem, setupApiTests } from "../support/api.ts"
import { freePort, waitUntilHealthy } from "../support/ports.ts"

const { postJson, run, db } = await setupApiTests(import.meta.file, { kinds: jsonKinds })
const root = fileURLToPath(new URL("../..", import.meta.url))

/** `[[...[leaf]...]]`: `depth` arrays around `leaf`. */
const nested = (depth: number, leaf = "1") => `${"[".repeat(depth)}${leaf}${"]".repeat(depth)}`
/** A value nested exactly `depth` levels: arrays inside one another. */
const nestedValue = (depth: number): unknown => {
  let value: unknown = 1
  for (let i = 0; i < depth; i++) value = [value]
  return value
}
const zeros = (n: number) => Array.from({ length: n }, () => 0)

describe("MAX_PAYLOAD_DEPTH (default 100) over HTTP", () => {
  it("a payload 100 levels deep is stored; 101 is a 422 naming the first container too deep", async () => {
    // the payload object is level 1: 99 arrays in `data` make 100
    const ok = await postJson("/jobs", `{"kind":"blob","payload":{"data":${nested(99)}}}`)
    expect(ok.status).toBe(201)
    const problem = await expectProblem(
      await postJson("/jobs", `{"kind":"blob","payload":{"data":${nested(100)}}}`),
      422,
      "validation-failed"
    )
    const path = ["body", "payload", "data", ...zeros(99)]
    expect(problem.errors).toEqual([
      { path, message: "Expected at most 100 levels of nesting (MAX_PAYLOAD_DEPTH)" }
    ])
    expect(problem.detail).toBe(
      `${path.join(".")}: Expected at most 100 levels of nesting (MAX_PAYLOAD_DEPTH)`
    )
  })

  it("counts from each payload in a batch, and names the item", async () => {
    const item = (depth: number) => `{"kind":"blob","payload":{"data":${nested(depth)}}}`
    expect((await postJson("/jobs/batch", `{"jobs":[${item(1)},${item(99)}]}`)).status).toBe(200)
    const problem = await expectProblem(
      await postJson("/jobs/batch", `{"jobs":[${item(1)},${item(100)}]}`),
      422,
      "validation-failed"
    )
    expect(problem.errors.map((issue: { path: Array<unknown> }) => issue.path)).toEqual([
      ["body", "jobs", 1, "payload", "data", ...zeros(99)]
    ])
  })

  it("refuses deep nesting anywhere in the body (unknown keys, malformed tails) as a 422, never a 500", async () => {
    for (const body of [
      `{"kind":"noop","payload":{},"extra":${nested(150)}}`,
      `{"kind":"blob","payload":{"data":{"a\\"b":[0,${nested(120)}]}}}`,
      // not JSON past the point where it is already too deep: refused for its depth, before it is parsed
      `{"kind":"noop","payload":${"[".repeat(50_000)}`
    ]) {
      const problem = await expectProblem(await postJson("/jobs", body), 422, "validation-failed")
      expect(problem.errors).toHaveLength(1)
      expect(problem.errors[0].message).toContain("MAX_PAYLOAD_DEPTH")
    }
    const keyed = await expectProblem(
      await postJson("/jobs", `{"kind":"blob","payload":{"data":{"a\\"b":[0,${nested(120)}]}}}`),
      422,
      "validation-failed"
    )
    expect(keyed.errors[0].path.slice(0, 6)).toEqual(["body", "payload", "data", 'a"b', 1, 0])
  })
})

describe("MAX_PAYLOAD_DEPTH in the library (Queue.enqueue)", () => {
  const enqueueError = (payload: unknown) =>
    run(Effect.flip(Queue.use((q) => q.enqueue({ kind: "blob", payload: { data: payload } }))))

  it("refuses a payload too deep with InvalidPayload and its path, before decoding it", async () => {
    const { job } = await run(
      Queue.use((q) => q.enqueue({ kind: "blob", payload: { data: nestedValue(99) } }))
    )
    expect(job.kind).toBe("blob")
    for (const depth of [100, 12_000, 1_000_000]) {
      const error = await enqueueError(nestedValue(depth))
      expect(error._tag).toBe("InvalidPayload")
      if (error._tag !== "InvalidPayload") continue
      expect(error.issues).toEqual([
        {
          path: ["data", ...zeros(99)],
          message: "Expected at most 100 levels of nesting (MAX_PAYLOAD_DEPTH)"
        }
      ])
    }
  })

  it("refuses a payload that contains itself rather than following it forever", async () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    const error = await enqueueError(cyclic)
    expect(error._tag).toBe("InvalidPayload")
  })
})

describe("an abusive body and everyone else (the API program on a socket)", () => {
  const port = freePort()
  const base = `http://127.0.0.1:${port}`

  /**
   * Sends `body` and, until it is answered, probes /health one request after another: the slowest probe is
   * how long the abusive request held everyone else up.
   */
  const healthDuring = async (path: string, body: string) => {
    let answered = false
    const abusive = fetch(`${base}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body
    }).then(async (response) => {
      const problem = (await response.json()) as { errors?: Array<{ message: string }> }
      answered = true
      return { status: response.status, problem }
    })
    const probes: Array<number> = []
    do {
      const started = performance.now()
      const health = await fetch(`${base}/health`)
      probes.push(performance.now() - started)
      expect(health.status).toBe(200)
    } while (!answered)
    return { ...(await abusive), slowest: Math.max(...probes) }
  }

  const mib = 1024 * 1024
  // `[{"k":[{"k":...}]}]`, 95 levels. (1 MiB of bare `[[...]]` is the costliest body to parse at all, twice
  // the time of this one: JSON.parse of ~500,000 arrays; MAX_BODY_BYTES bounds that, no walk of ours.)
  let branch = "1"
  for (let level = 0; level < 95; level++) branch = level % 2 === 0 ? `[${branch}]` : `{"k":${branch}}`
  const cases: Array<readonly [string, string, string]> = [
    // the issue's case: a batch under 1 MiB of payloads 12,000 levels deep (17 s before the limit)
    [
      "a batch of payloads 12,000 levels deep",
      "/jobs/batch",
      `{"jobs":[${Array.from({ length: 40 }, () => `{"kind":"noop","payload":${nested(12_000)}}`).join(",")}]}`
    ],
    ["one payload ~1 MiB deep", "/jobs", `{"kind":"noop","payload":${nested(Math.floor((mib - 64) / 2))}}`],
    [
      "~1 MiB of wide nesting, every branch 95 levels of objects and arrays",
      "/jobs",
      `{"kind":"noop","payload":{"a":[${Array.from({ length: Math.floor((mib - 64) / (branch.length + 1)) }, () => branch).join(",")}]}}`
    ]
  ]

  it("answers each with a 422 while /health does not wait 100 ms", async () => {
    const child = Bun.spawn([process.execPath, "src/api.ts"], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: db.url, PORT: String(port), LOG_LEVEL: "error" },
      stdout: "ignore",
      stderr: "inherit"
    })
    afterAll(() => child.kill("SIGKILL"))
    await waitUntilHealthy(`${base}/health`, 20_000)
    // The machine is shared (other test runs, other processes): a probe can wait on the CPU, not on the
    // API. So each case gets up to three tries and must hold /health up under 100 ms in one of them; a walk
    // that blocks (17 s for the first case before the limit) fails all three.
    const held: Array<{ what: string; slowest: Array<number> }> = []
    for (const [what, path, body] of cases) {
      expect(body.length).toBeLessThan(mib)
      const tries: Array<number> = []
      while (tries.length < 3 && !tries.some((ms) => ms < 100)) {
        const { status, slowest } = await healthDuring(path, body)
        expect({ what, status }).toEqual({ what, status: 422 })
        tries.push(Math.round(slowest))
      }
      if (!tries.some((ms) => ms < 100)) held.push({ what, slowest: tries })
    }
    expect(held).toEqual([])
  }, 60_000)
})
