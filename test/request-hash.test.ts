/**
 * The idempotency and unique hashes moved from node:crypto's synchronous createHash to Web Crypto (#22):
 * they must stay byte for byte what the rows already stored were made with, or a repeat of a request made
 * before the upgrade would be taken for a conflict (and a unique slot for a free one).
 */

import { describe, expect, it } from "bun:test"
import { createHash } from "node:crypto"
import fc from "fast-check"
import { canonicalJson, requestHash } from "../src/queue/requestHash.ts"

const nodeHash = (value: unknown) => createHash("sha256").update(canonicalJson(value)).digest("hex")

describe("requestHash", () => {
  it("is the SHA-256 hex of the canonical JSON, as node:crypto made it (any JSON, any key order)", async () => {
    // a value fixed here, with the hash the old code stored for it
    const request = { kind: "noop", queue: "default", payload: { b: [1, "é", null], a: true }, priority: 0 }
    expect(await requestHash(request)).toBe(
      "46aa16ca3b23cadc3e56d51262ae2ba6ba6452ed3adb110934bf055dbc60708f"
    )
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (value) => {
        expect(await requestHash(value)).toBe(nodeHash(value))
      }),
      { numRuns: 300 }
    )
  })
})
