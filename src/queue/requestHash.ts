/**
 * What identifies an idempotent enqueue: a SHA-256 of the request in canonical JSON, so key order does not
 * change it. A repeat with the same key and the same hash is the same request; another hash is a conflict.
 * Hashed with Web Crypto (`crypto.subtle`, a global on every runtime we run on, edge hosts included), which
 * is asynchronous: the queue validates a batch synchronously, then hashes what needs it in one go.
 */

/**
 * JSON with every object's keys sorted (by UTF-16 code units) and `undefined` members left out. A loop over
 * an explicit stack, not recursion: its pieces are joined once, so the work is linear in the value's size
 * whatever its depth. Its output is the one the stored hashes were made with: do not change it.
 */
export const canonicalJson = (value: unknown): string => {
  const out: Array<string> = []
  // each entry is a value still to write, or (a string) punctuation to copy out as it is
  const pending: Array<{ readonly value: unknown } | string> = [{ value }]
  while (pending.length > 0) {
    const next = pending.pop()!
    if (typeof next === "string") {
      out.push(next)
      continue
    }
    const current = next.value
    if (Array.isArray(current)) {
      out.push("[")
      pending.push("]")
      for (let i = current.length - 1; i >= 0; i--) {
        pending.push({ value: current[i] })
        if (i > 0) pending.push(",")
      }
    } else if (current !== null && typeof current === "object") {
      const entries = Object.entries(current as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      out.push("{")
      pending.push("}")
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, item] = entries[i]!
        pending.push({ value: item })
        pending.push(`${JSON.stringify(key)}:`)
        if (i > 0) pending.push(",")
      }
    } else {
      out.push(JSON.stringify(current) ?? "null")
    }
  }
  return out.join("")
}

const hex = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"))
const encoder = new TextEncoder()

/** The hash stored with an idempotency key (lowercase hex SHA-256 of `canonicalJson(request)`). */
export const requestHash = async (request: unknown): Promise<string> => {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(canonicalJson(request))))
  let out = ""
  for (const byte of digest) out += hex[byte]!
  return out
}
