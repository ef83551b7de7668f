/**
 * How deeply a client's JSON nests, checked before anything walks it. Every later walk (schema decoding,
 * the NUL scan, the request hash, Postgres's `jsonb` parser) then has a bounded depth: an unbounded one
 * overflows the stack (a 500) or, copying paths as it goes, takes time quadratic in the depth (seconds for
 * a 1 MiB body, with every other request waiting). Both checks here are loops, never recursion, and stop at
 * the first value too deep; neither copies a path unless it reports one.
 *
 * Depth counts containers: a scalar is 0, `{}` and `[]` are 1, `{"a": [1]}` is 2.
 */
import type { Issue } from "../domain/errors.ts"

/** What a value nested past the limit is told. */
export const tooDeepMessage = (maxDepth: number) =>
  `Expected at most ${maxDepth} levels of nesting (MAX_PAYLOAD_DEPTH)`

type Segment = string | number

/** A path as a linked list from the innermost segment out: a child's path is one allocation, not a copy. */
export interface PathNode {
  readonly segment: Segment
  readonly parent: PathNode | undefined
}

export const toPath = (node: PathNode | undefined): Array<Segment> => {
  const path: Array<Segment> = []
  for (let at = node; at !== undefined; at = at.parent) path.push(at.segment)
  return path.reverse()
}

/**
 * The first place where `value` nests deeper than `maxDepth`, as an issue with its path, or undefined.
 * For values made in code (`Queue.enqueue`); a cycle is reported as too deep rather than followed forever.
 */
export const depthIssue = (value: unknown, maxDepth: number): Issue | undefined => {
  const pending: Array<{
    readonly value: unknown
    readonly depth: number
    readonly path: PathNode | undefined
  }> = [{ value, depth: 0, path: undefined }]
  while (pending.length > 0) {
    const { value: current, depth, path } = pending.pop()!
    if (current === null || typeof current !== "object") continue
    if (depth + 1 > maxDepth) return { path: toPath(path), message: tooDeepMessage(maxDepth) }
    if (Array.isArray(current)) {
      for (let i = current.length - 1; i >= 0; i--) {
        pending.push({ value: current[i], depth: depth + 1, path: { segment: i, parent: path } })
      }
    } else {
      const keys = Object.keys(current)
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i]!
        const item = (current as Record<string, unknown>)[key]
        pending.push({ value: item, depth: depth + 1, path: { segment: key, parent: path } })
      }
    }
  }
  return undefined
}

const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN_OBJECT = 0x7b
const CLOSE_OBJECT = 0x7d
const OPEN_ARRAY = 0x5b
const CLOSE_ARRAY = 0x5d
const COMMA = 0x2c
const COLON = 0x3a

/** Where the string literal opening at `start` closes (the index of its closing quote), or -1. */
const closingQuote = (text: string, start: number) => {
  for (let at = text.indexOf('"', start + 1); at !== -1; at = text.indexOf('"', at + 1)) {
    let backslashes = 0
    while (text.charCodeAt(at - 1 - backslashes) === BACKSLASH) backslashes++
    if (backslashes % 2 === 0) return at
  }
  return -1
}

const keyAt = (text: string, start: number, end: number): string => {
  const literal = text.slice(start, end + 1)
  try {
    return JSON.parse(literal) as string
  } catch {
    return literal
  }
}

/**
 * The first container in JSON `text` that nests deeper than `maxDepth` plus `enclosing` (the containers
 * around the value the limit is about: a request body's job envelope), as an issue with its path, or
 * undefined. Reads the text once, before it is parsed: `JSON.parse` of a 1 MiB body nested half a million
 * deep alone blocks the event loop for a fifth of a second. Text that is not JSON is not judged here
 * (whatever parses it says so), only how deeply its brackets nest.
 */
export const textDepthIssue = (text: string, maxDepth: number, enclosing = 0): Issue | undefined => {
  const limit = maxDepth + enclosing
  // first a bare count, cheap enough for every body; the path is worked out only for a body refused
  let depth = 0
  for (let at = 0; at < text.length; at++) {
    const code = text.charCodeAt(at)
    if (code === QUOTE) {
      at = closingQuote(text, at)
      if (at === -1) return undefined
    } else if (code === OPEN_OBJECT || code === OPEN_ARRAY) {
      if (++depth > limit) return { path: pathAt(text, at), message: tooDeepMessage(maxDepth) }
    } else if (code === CLOSE_OBJECT || code === CLOSE_ARRAY) {
      depth--
    }
  }
  return undefined
}

/** The path of the container opening at `end` in JSON `text`: the keys and indexes of those around it. */
const pathAt = (text: string, end: number): Array<Segment> => {
  // one entry per open container: is it an array, its current index (arrays) or the span of its current key
  const isArray: Array<boolean> = []
  const index: Array<number> = []
  const keyStart: Array<number> = []
  const keyEnd: Array<number> = []
  let expectKey = false
  for (let at = 0; at < end; at++) {
    const code = text.charCodeAt(at)
    if (code === QUOTE) {
      const close = closingQuote(text, at)
      const top = isArray.length - 1
      if (expectKey && top >= 0 && !isArray[top]) {
        keyStart[top] = at
        keyEnd[top] = close
        expectKey = false
      }
      at = close
    } else if (code === OPEN_OBJECT || code === OPEN_ARRAY) {
      isArray.push(code === OPEN_ARRAY)
      index.push(0)
      keyStart.push(-1)
      keyEnd.push(-1)
      expectKey = code === OPEN_OBJECT
    } else if (code === CLOSE_OBJECT || code === CLOSE_ARRAY) {
      isArray.pop()
      index.pop()
      keyStart.pop()
      keyEnd.pop()
      expectKey = false
    } else if (code === COMMA) {
      const top = isArray.length - 1
      if (top < 0) continue
      if (isArray[top]) index[top] = index[top]! + 1
      else expectKey = true
    } else if (code === COLON) {
      expectKey = false
    }
  }
  return isArray.map((array, level) =>
    array ? index[level]! : keyStart[level]! < 0 ? "" : keyAt(text, keyStart[level]!, keyEnd[level]!)
  )
}
