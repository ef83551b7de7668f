/**
 * Job kinds: a payload must match its kind's schema (every issue reported with its path), unknown kinds
 * are named, and a user's kinds module loads from a path and then drives validation.
 */
import { describe, expect, it } from "bun:test"
import { fileURLToPath, pathToFileURL } from "node:url"
import { ConfigProvider, Effect, Layer, Schema } from "effect"
import type { Issue } from "../src/domain/errors.ts"
import { defineKind, JobKinds, loadKinds } from "../src/domain/JobKind.ts"
import { demoKinds, noop } from "../src/kinds/DemoKinds.ts"
import * as KindsFromEnv from "../src/kinds/fromEnv.ts"
import { Queue } from "../src/queue/Queue.ts"
import { queueRuntime, setupQueueTests } from "./support/runtime.ts"

const { db, run } = await setupQueueTests(import.meta.file)

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))

let n = 0
const uniqueQueue = () => `kinds-${++n}`

const paths = (issues: ReadonlyArray<Issue>) => issues.map((i) => JSON.stringify(i.path)).sort()

const jobsIn = (queue: string) => run(Queue.use((q) => q.list({ queue })))

describe("payload validation", () => {
  it("an unknown kind fails with UnknownJobKind listing the known kinds, and writes nothing", async () => {
    const queue = uniqueQueue()
    const error = await run(Effect.flip(Queue.use((q) => q.enqueue({ kind: "nope", payload: {}, queue }))))
    expect(error._tag).toBe("UnknownJobKind")
    if (error._tag !== "UnknownJobKind") return
    expect(error.kind).toBe("nope")
    expect([...error.known].sort()).toEqual(["cpu_hash", "flaky", "noop", "sleep"])
    expect(error.message).toContain("nope")
    expect(error.message).toContain("cpu_hash")
    expect(error.index).toBeUndefined()
    expect((await jobsIn(queue)).jobs).toEqual([])
  })

  it("an invalid payload fails with InvalidPayload listing every issue with its path", async () => {
    const queue = uniqueQueue()
    const error = await run(
      Effect.flip(Queue.use((q) => q.enqueue({ kind: "cpu_hash", payload: { seed: 5, rounds: 0 }, queue })))
    )
    expect(error._tag).toBe("InvalidPayload")
    if (error._tag !== "InvalidPayload") return
    expect(error.kind).toBe("cpu_hash")
    expect(paths(error.issues)).toEqual(['["rounds"]', '["seed"]'])
    for (const issue of error.issues) expect(issue.message.length).toBeGreaterThan(0)
    expect((await jobsIn(queue)).jobs).toEqual([])
  })

  it("a missing field and a payload that is not an object are reported too", async () => {
    const missing = await run(Effect.flip(Queue.use((q) => q.enqueue({ kind: "sleep", payload: {} }))))
    expect(missing._tag).toBe("InvalidPayload")
    if (missing._tag === "InvalidPayload") expect(paths(missing.issues)).toEqual(['["ms"]'])
    for (const payload of [null, "ms=5", [5], 7]) {
      const notObject = await run(Effect.flip(Queue.use((q) => q.enqueue({ kind: "sleep", payload }))))
      expect(notObject._tag).toBe("InvalidPayload")
      if (notObject._tag === "InvalidPayload") expect(paths(notObject.issues)).toEqual(["[]"])
    }
  })

  it("a payload string or key containing NUL (which jsonb cannot store) is InvalidPayload at its path", async () => {
    const error = await run(
      Effect.flip(Queue.use((q) => q.enqueue({ kind: "cpu_hash", payload: { seed: "a\u0000b", rounds: 1 } })))
    )
    expect(error._tag).toBe("InvalidPayload")
    if (error._tag === "InvalidPayload") {
      expect(paths(error.issues)).toEqual(['["seed"]'])
      expect(error.issues[0]!.message).toContain("NUL")
    }
    const batch = await run(
      Effect.flip(
        Queue.use((q) =>
          q.enqueueMany([
            { kind: "noop", payload: {} },
            { kind: "sleep", payload: { ms: 1 } },
            { kind: "cpu_hash", payload: { seed: "\u0000", rounds: 1 } }
          ])
        )
      )
    )
    expect(batch._tag).toBe("InvalidPayload")
    if (batch._tag === "InvalidPayload") expect(batch.index).toBe(2)
  })

  it("a valid payload is stored as given, with the job's defaults", async () => {
    const queue = uniqueQueue()
    const { job, created } = await run(
      Queue.use((q) => q.enqueue({ kind: "cpu_hash", payload: { seed: "abc", rounds: 3 }, queue }))
    )
    expect(created).toBe(true)
    const stored = await run(Queue.use((q) => q.get(job.id)))
    expect(stored.payload).toEqual({ seed: "abc", rounds: 3 })
    expect(stored.kind).toBe("cpu_hash")
    expect(stored.queue).toBe(queue)
    expect(stored.status).toBe("queued")
    expect(stored.attempts).toBe(0)
    expect(stored.maxAttempts).toBe(5)
    expect(stored.priority).toBe(0)
    expect(stored.errors).toEqual([])
    expect(stored.result).toBeNull()
  })

  it("rejects payload keys the kind does not declare, each named, and writes nothing", async () => {
    const queue = uniqueQueue()
    const error = await run(
      Effect.flip(
        Queue.use((q) => q.enqueue({ kind: "sleep", payload: { ms: 10, note: "x", extra: 1 }, queue }))
      )
    )
    expect(error._tag).toBe("InvalidPayload")
    if (error._tag !== "InvalidPayload") return
    expect(paths(error.issues)).toEqual(['["extra"]', '["note"]'])
    expect((await jobsIn(queue)).jobs).toEqual([])
  })

  it("an empty payload schema, `noop`'s or a user's `Schema.Struct({})`, takes `{}` and nothing else", async () => {
    const bare = defineKind({ name: "bare", payload: Schema.Struct({}), handler: () => Effect.void })
    const custom = queueRuntime(db.url, [noop, bare])
    try {
      for (const kind of ["noop", "bare"]) {
        const queue = uniqueQueue()
        const { job } = await custom.runPromise(Queue.use((q) => q.enqueue({ kind, payload: {}, queue })))
        expect(job.payload).toEqual({})
        for (const [payload, issuePaths] of [
          [{ a: 1 }, ['["a"]']],
          [5, ["[]"]],
          ["x", ["[]"]],
          [[], ["[]"]]
        ] as const) {
          const error = await custom.runPromise(
            Effect.flip(Queue.use((q) => q.enqueue({ kind, payload, queue })))
          )
          expect(error._tag).toBe("InvalidPayload")
          if (error._tag === "InvalidPayload") expect(paths(error.issues)).toEqual([...issuePaths])
        }
        expect((await custom.runPromise(Queue.use((q) => q.list({ queue })))).jobs).toHaveLength(1)
      }
    } finally {
      await custom.dispose()
    }
  })
})

describe("the kinds registry", () => {
  it("JobKinds.make rejects two kinds with one name", () => {
    expect(() => JobKinds.make([...demoKinds, { ...noop }])).toThrow(/job kind "noop" is defined twice/)
    expect(JobKinds.make(demoKinds).names).toEqual(["noop", "sleep", "flaky", "cpu_hash"])
    expect(JobKinds.make(demoKinds).get("flaky")?.name).toBe("flaky")
    expect(JobKinds.make(demoKinds).get("missing")).toBeUndefined()
  })
})

describe("loadKinds", () => {
  it("loads a module's `kinds` export from a path, and its kinds drive validation", async () => {
    const kinds = await Effect.runPromise(loadKinds(fixture("kinds.ts")))
    expect(kinds.map((k) => k.name)).toEqual(["send_email", "resize_image"])

    const custom = queueRuntime(db.url, kinds)
    try {
      const queue = uniqueQueue()
      const error = await custom.runPromise(
        Effect.flip(
          Queue.use((q) =>
            q.enqueue({
              kind: "send_email",
              queue,
              payload: {
                to: [{ address: "not an address" }, { address: "b@example.com", name: 5 }],
                subject: "a subject far longer than twenty characters"
              }
            })
          )
        )
      )
      expect(error._tag).toBe("InvalidPayload")
      if (error._tag !== "InvalidPayload") return
      expect(paths(error.issues)).toEqual([
        '["body"]',
        '["subject"]',
        '["to",0,"address"]',
        '["to",1,"name"]'
      ])

      const payload = { to: [{ address: "a@example.com", name: "A" }], body: "hello" }
      const { job } = await custom.runPromise(
        Queue.use((q) => q.enqueue({ kind: "send_email", queue, payload }))
      )
      expect(job.payload).toEqual(payload)
      expect(job.maxAttempts).toBe(3) // the kind's default

      const unknown = await custom.runPromise(
        Effect.flip(Queue.use((q) => q.enqueue({ kind: "noop", queue, payload: {} })))
      )
      expect(unknown._tag).toBe("UnknownJobKind")
      if (unknown._tag === "UnknownJobKind") expect(unknown.known).toEqual(["send_email", "resize_image"])
    } finally {
      await custom.dispose()
    }
  })

  it("accepts a default export and a file: URL", async () => {
    const kinds = await Effect.runPromise(loadKinds(pathToFileURL(fixture("default-kinds.ts")).href))
    expect(kinds.map((k) => k.name)).toEqual(["ping"])
  })

  it("fails clearly for a module without kinds, and for a path that does not exist", async () => {
    const noKinds = await Effect.runPromise(Effect.flip(loadKinds(fixture("no-kinds.ts"))))
    expect(noKinds.message).toContain(fixture("no-kinds.ts"))
    expect(noKinds.message).toContain('no "kinds" array')

    const missing = fixture("does-not-exist.ts")
    const notFound = await Effect.runPromise(Effect.flip(loadKinds(missing)))
    expect(notFound.message).toContain(`cannot load job kinds from ${missing}`)
  })

  it("JOBS_MODULE picks the module; unset, the demo kinds", async () => {
    const namesWith = (env: Record<string, string>) =>
      Effect.runPromise(
        JobKinds.use((k) => Effect.succeed(k.names)).pipe(
          Effect.provide(
            KindsFromEnv.layer.pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env))))
          )
        )
      )
    expect(await namesWith({ JOBS_MODULE: fixture("kinds.ts") })).toEqual(["send_email", "resize_image"])
    expect(await namesWith({})).toEqual(["noop", "sleep", "flaky", "cpu_hash"])
  })
})
