/**
 * PostgreSQL cannot store the NUL character (U+0000): not in `text`, not in a `jsonb` string or key. Valid
 * JSON may still carry it (`"\u0000"`). Payloads are the client's data, so the queue rejects them with the
 * paths; results and error messages are the worker's output, so they are kept with U+FFFD in its place
 * rather than failing the settle (and, batched, every other job's with it).
 */
import type { Issue } from "../domain/errors.ts"

const nul = "\u0000"
const replacement = "\uFFFD"

/** Where a JSON value holds NUL, one issue per string or key. */
export const nulIssues = (value: unknown, path: ReadonlyArray<string | number> = []): Array<Issue> => {
  if (typeof value === "string") {
    return value.includes(nul)
      ? [{ path, message: "contains the NUL character (\\u0000), which cannot be stored" }]
      : []
  }
  if (Array.isArray(value)) return value.flatMap((item, i) => nulIssues(item, [...path, i]))
  if (value !== null && typeof value === "object") {
    return Object.entries(value).flatMap(([key, item]) => [
      ...(key.includes(nul)
        ? [
            {
              path: [...path, key],
              message: "key contains the NUL character (\\u0000), which cannot be stored"
            }
          ]
        : []),
      ...nulIssues(item, [...path, key])
    ])
  }
  return []
}

/** Text with each NUL replaced by U+FFFD. */
export const replaceNulText = (text: string) =>
  text.includes(nul) ? text.replaceAll(nul, replacement) : text

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

/** `JSON.stringify(value)`, as text `jsonb` accepts: a NUL in any string or key becomes U+FFFD. */
export const jsonbText = (value: unknown): string => {
  const text = JSON.stringify(value)
  // JSON.stringify writes NUL as the escape \u0000; without that sequence there is nothing to replace
  return text.includes("\\u0000") ? JSON.stringify(replaceNul(JSON.parse(text))) : text
}
