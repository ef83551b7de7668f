/**
 * PostgreSQL cannot store the NUL character (U+0000): not in `text`, not in a `jsonb` string or key. Nor a
 * lone UTF-16 surrogate (U+D800-U+DFFF without its pair): it is not Unicode, `jsonb` rejects its escape
 * (`"\ud800"`) and `text` would silently get U+FFFD instead. Valid JSON may still carry either. Payloads are
 * the client's data, so the queue rejects them with the paths; results and error messages are the worker's
 * output, so they are kept with U+FFFD in its place rather than failing the settle (and, batched, every
 * other job's with it).
 */
import type { Issue } from "../domain/errors.ts"
import { type PathNode, toPath } from "./nesting.ts"

const nul = "\u0000"
const replacement = "\uFFFD"
/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
const loneSurrogates = new RegExp(loneSurrogate.source, "g")

/** Why `text` cannot be stored, or undefined when it can. */
const unstorable = (text: string, what: string) =>
  text.includes(nul)
    ? `${what} the NUL character (\\u0000), which cannot be stored`
    : loneSurrogate.test(text)
      ? `${what} a lone UTF-16 surrogate, which is not Unicode and cannot be stored`
      : undefined

/**
 * Where a JSON value holds NUL or a lone surrogate, one issue per string or key. A loop over an explicit
 * stack, not recursion, and a path is built only for a string or key it reports: the walk is linear in
 * the value's size whatever its depth.
 */
export const nulIssues = (value: unknown): Array<Issue> => {
  const issues: Array<Issue> = []
  // an entry is a value to look into, or (with `keyMessage`) a key already found unstorable
  const pending: Array<{
    readonly value: unknown
    readonly path: PathNode | undefined
    readonly keyMessage?: string
  }> = [{ value, path: undefined }]
  while (pending.length > 0) {
    const { value: current, path, keyMessage } = pending.pop()!
    if (keyMessage !== undefined) {
      issues.push({ path: toPath(path), message: keyMessage })
    } else if (typeof current === "string") {
      const message = unstorable(current, "contains")
      if (message !== undefined) issues.push({ path: toPath(path), message })
    } else if (Array.isArray(current)) {
      for (let i = current.length - 1; i >= 0; i--) {
        pending.push({ value: current[i], path: { segment: i, parent: path } })
      }
    } else if (current !== null && typeof current === "object") {
      const keys = Object.keys(current)
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i]!
        const at = { segment: key, parent: path }
        pending.push({ value: (current as Record<string, unknown>)[key], path: at })
        // popped first: a key's issue comes before its value's
        const message = unstorable(key, "key contains")
        if (message !== undefined) pending.push({ value: undefined, path: at, keyMessage: message })
      }
    }
  }
  return issues
}

/** Text with each NUL and each lone surrogate replaced by U+FFFD. */
export const replaceNulText = (text: string) => {
  const withoutNul = text.includes(nul) ? text.replaceAll(nul, replacement) : text
  return loneSurrogate.test(withoutNul) ? withoutNul.replace(loneSurrogates, replacement) : withoutNul
}

/**
 * In JSON text from `JSON.stringify`: an escaped backslash (kept as it is), or the escape of a NUL or of a
 * lone surrogate (`JSON.stringify` writes a surrogate pair as is, so an escaped surrogate is a lone one).
 * Matched left to right, so an escaped backslash followed by the text "u0000" is not taken for a NUL.
 */
const unstorableEscape = /\\(?:\\|u0000|ud[89a-f][0-9a-f]{2})/gi

/** JSON text from `JSON.stringify`, as text `jsonb` accepts: a NUL or lone surrogate becomes U+FFFD. */
export const storableJson = (text: string): string =>
  // without those escapes there is nothing to replace
  text.includes("\\u0000") || /\\ud[89a-f]/i.test(text)
    ? text.replace(unstorableEscape, (found) => (found === "\\\\" ? found : replacement))
    : text

/**
 * `JSON.stringify(value)`, as text `jsonb` accepts: a NUL or lone surrogate in any string or key becomes
 * U+FFFD. Done on the text, in one pass: no walk over the value, however deep the worker's result nests.
 */
export const jsonbText = (value: unknown): string => storableJson(JSON.stringify(value))
