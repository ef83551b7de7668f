/**
 * PostgreSQL cannot store the NUL character (U+0000): not in `text`, not in a `jsonb` string or key. Nor a
 * lone UTF-16 surrogate (U+D800-U+DFFF without its pair): it is not Unicode, `jsonb` rejects its escape
 * (`"\ud800"`) and `text` would silently get U+FFFD instead. Valid JSON may still carry either. Payloads are
 * the client's data, so the queue rejects them with the paths; results and error messages are the worker's
 * output, so they are kept with U+FFFD in its place rather than failing the settle (and, batched, every
 * other job's with it).
 */
import type { Issue } from "../domain/errors.ts"

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

/** Where a JSON value holds NUL or a lone surrogate, one issue per string or key. */
export const nulIssues = (value: unknown, path: ReadonlyArray<string | number> = []): Array<Issue> => {
  if (typeof value === "string") {
    const message = unstorable(value, "contains")
    return message === undefined ? [] : [{ path, message }]
  }
  if (Array.isArray(value)) return value.flatMap((item, i) => nulIssues(item, [...path, i]))
  if (value !== null && typeof value === "object") {
    return Object.entries(value).flatMap(([key, item]) => {
      const message = unstorable(key, "key contains")
      return [
        ...(message === undefined ? [] : [{ path: [...path, key], message }]),
        ...nulIssues(item, [...path, key])
      ]
    })
  }
  return []
}

/** Text with each NUL and each lone surrogate replaced by U+FFFD. */
export const replaceNulText = (text: string) => {
  const withoutNul = text.includes(nul) ? text.replaceAll(nul, replacement) : text
  return loneSurrogate.test(withoutNul) ? withoutNul.replace(loneSurrogates, replacement) : withoutNul
}

/** A JSON value with each NUL in its strings and keys replaced by U+FFFD. */
const replaceNul = (value: unknown): unknown => {
  if (typeof value === "string") return replaceNulText(value)
  if (Array.isArray(value)) return value.map(replaceNul)
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [replaceNulText(key), replaceNul(item)])
    )
  }
  return value
}

/** `JSON.stringify(value)`, as text `jsonb` accepts: a NUL or lone surrogate in any string or key becomes U+FFFD. */
export const jsonbText = (value: unknown): string => {
  const text = JSON.stringify(value)
  // JSON.stringify writes NUL as the escape \u0000 and a lone surrogate as \udXXX (a pair it writes as is);
  // without those sequences there is nothing to replace
  return text.includes("\\u0000") || /\\ud[89a-f]/i.test(text)
    ? JSON.stringify(replaceNul(JSON.parse(text)))
    : text
}
