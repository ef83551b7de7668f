/**
 * The walks over a client's JSON are loops, linear in the value's size at any depth: the depth checks (on a
 * value, and on a body's text before it is parsed), the NUL scan, the request hash and the `jsonb` text.
 * Each is checked against the plain recursive definition it replaced, on generated values, and run on a
 * value far deeper than any stack.
 */
import { describe, expect, it } from "bun:test"
import fc from "fast-check"
import type { Issue } from "../src/domain/errors.ts"
import { depthIssue, textDepthIssue, tooDeepMessage } from "../src/queue/nesting.ts"
import { jsonbText, nulIssues, replaceNulText } from "../src/queue/nul.ts"
import { canonicalJson } from "../src/queue/requestHash.ts"

// the recursive definitions, as the code had them: the reference the loops must agree with
const recursiveCanonicalJson = (value: unknown): string => {
  if (Array.isArray(value)) return `[${value.map(recursiveCanonicalJson).join(",")}]`
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${recursiveCanonicalJson(v)}`).join(",")}}`
  }
  return JSON.stringify(value) ?? "null"
}

const recursiveNulIssues = (value: unknown, path: ReadonlyArray<string | number> = []): Array<Issue> => {
  const unstorable = (text: string, what: string) =>
    text.includes("\u0000")
      ? `${what} the NUL character (\\u0000), which cannot be stored`
      : /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text)
        ? `${what} a lone UTF-16 surrogate, which is not Unicode and cannot be stored`
        : undefined
  if (typeof value === "string") {
    const message = unstorable(value, "contains")
    return message === undefined ? [] : [{ path, message }]
  }
  if (Array.isArray(value)) return value.flatMap((item, i) => recursiveNulIssues(item, [...path, i]))
  if (value !== null && typeof value === "object") {
    return Object.entries(value).flatMap(([key, item]) => {
      const message = unstorable(key, "key contains")
      return [
        ...(message === undefined ? [] : [{ path: [...path, key], message }]),
        ...recursiveNulIssues(item, [...path, key])
      ]
    })
  }
  return []
}

const recursiveReplaceNul = (value: unknown): unknown => {
  if (typeof value === "string") return replaceNulText(value)
  if (Array.isArray(value)) return value.map(recursiveReplaceNul)
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [replaceNulText(key), recursiveReplaceNul(item)])
    )
  }
  return value
}

/** The first container deeper than `max`, in document order, by recursion (for small values only). */
const recursiveDepthIssue = (value: unknown, max: number): Issue | undefined => {
  const visit = (current: unknown, depth: number, path: Array<string | number>): Issue | undefined => {
    if (current === null || typeof current !== "object") return undefined
    if (depth + 1 > max) return { path, message: tooDeepMessage(max) }
    const entries: Array<[string | number, unknown]> = Array.isArray(current)
      ? current.map((item, i) => [i, item])
      : Object.entries(current)
    for (const [segment, item] of entries) {
      const found = visit(item, depth + 1, [...path, segment])
      if (found !== undefined) return found
    }
    return undefined
  }
  return visit(value, 0, [])
}

// strings with NUL, lone surrogates, pairs, quotes and backslashes: what the walks must get right
const awkwardString = fc
  .array(
    fc.constantFrom("a", "\u0000", "\ud800", "\udc00", "\ud83d\ude00", '"', "\\", "u0000", "\\u0000", "é"),
    {
      maxLength: 6
    }
  )
  .map((parts) => parts.join(""))
const awkwardJson = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.oneof(awkwardString, fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean()),
    fc.constant(null),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(awkwardString, tie("value"), { maxKeys: 4 })
  )
})).value

/** A value nested `depth` levels: alternately arrays and objects, a string with NUL at the bottom. */
const deepValue = (depth: number) => {
  let value: unknown = "x\u0000"
  for (let i = depth; i > 0; i--) value = i % 2 === 0 ? [value] : { k: value }
  return value
}
const deepPath = (depth: number) => Array.from({ length: depth }, (_, i) => ((i + 1) % 2 === 0 ? 0 : "k"))

describe("the depth checks", () => {
  it("on a value: the first container too deep, as the recursive definition finds it", () => {
    fc.assert(
      fc.property(awkwardJson, fc.integer({ min: 0, max: 5 }), (value, max) => {
        expect(depthIssue(value, max)).toEqual(recursiveDepthIssue(value, max))
      })
    )
  })

  it("on a body's text: the same verdict and path as on the parsed value, keys with quotes included", () => {
    fc.assert(
      fc.property(awkwardJson, fc.integer({ min: 0, max: 5 }), fc.boolean(), (value, max, pretty) => {
        const text = JSON.stringify(value, null, pretty ? 2 : undefined)
        expect(textDepthIssue(text, max)).toEqual(depthIssue(JSON.parse(text), max))
      })
    )
  })

  it("stop at the limit on a value or text a million levels deep", () => {
    const value = deepValue(1_000_000)
    expect(depthIssue(value, 100)).toEqual({ path: deepPath(100), message: tooDeepMessage(100) })
    expect(textDepthIssue(`${"[".repeat(1_000_000)}${"]".repeat(1_000_000)}`, 100, 1)?.path).toHaveLength(101)
  })
})

describe("the NUL scan", () => {
  it("finds what the recursive scan found, in the same order", () => {
    fc.assert(
      fc.property(awkwardJson, (value) => {
        expect(nulIssues(value)).toEqual(recursiveNulIssues(value))
      })
    )
  })

  it("is linear at any depth: 200,000 levels, one issue at the bottom, well under a second", () => {
    const started = performance.now()
    const issues = nulIssues(deepValue(200_000))
    expect(issues).toHaveLength(1)
    expect(issues[0]!.path).toEqual(deepPath(200_000))
    expect(performance.now() - started).toBeLessThan(1000)
  })
})

describe("the request hash's canonical JSON", () => {
  it("is the recursive definition's output exactly (stored hashes stay valid)", () => {
    fc.assert(
      fc.property(awkwardJson, (value) => {
        expect(canonicalJson(value)).toBe(recursiveCanonicalJson(value))
      })
    )
    expect(canonicalJson({ b: 1, a: undefined, c: [undefined, 2], "10": 0, "9": 0 })).toBe(
      recursiveCanonicalJson({ b: 1, a: undefined, c: [undefined, 2], "10": 0, "9": 0 })
    )
  })

  it("writes a value 200,000 levels deep (one key per object: the same text as JSON.stringify)", () => {
    expect(canonicalJson(deepValue(40_000))).toBe(JSON.stringify(deepValue(40_000)))
    const text = canonicalJson(deepValue(200_000))
    expect(text.startsWith('{"k":[{"k":')).toBe(true)
    expect(text).toContain('{"k":["x\\u0000"]}]}')
    // 100,000 arrays (2 characters each), 100,000 objects (`{"k":` and `}`), the 9-character string
    expect(text).toHaveLength(100_000 * 2 + 100_000 * 6 + 9)
  })
})

describe("jsonb text", () => {
  it("is the JSON of the value with each NUL and lone surrogate replaced, as before", () => {
    fc.assert(
      fc.property(awkwardJson, (value) => {
        const text = JSON.stringify(value)
        const before =
          text.includes("\\u0000") || /\\ud[89a-f]/i.test(text)
            ? JSON.stringify(recursiveReplaceNul(JSON.parse(text)))
            : text
        // the same text, except that two keys made equal by the replacement are both written (jsonb keeps
        // the last, as the old walk did): compare what each parses to
        expect(JSON.parse(jsonbText(value))).toEqual(JSON.parse(before))
      })
    )
  })

  it("does not walk the value: a result 40,000 levels deep (past a recursive walk's stack) is written", () => {
    const text = jsonbText(deepValue(40_000))
    expect(text).toContain('"x\uFFFD"')
    expect(text).not.toContain("\\u0000")
  })
})
