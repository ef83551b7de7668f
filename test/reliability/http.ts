/** A small HTTP client for the chaos and soak suites: every request bounded in time, problems checked. */

export interface Answer {
  readonly status: number
  readonly ms: number
  readonly body: any
  readonly headers: Headers
}

/** One request; a hang past `timeoutMs` is answered with status 0 (the caller's assertion names it). */
export const call = async (
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  timeoutMs = 20_000
): Promise<Answer> => {
  const began = performance.now()
  try {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs)
    })
    const text = await response.text()
    let parsed: unknown = text
    try {
      parsed = JSON.parse(text)
    } catch {}
    return { status: response.status, ms: performance.now() - began, body: parsed, headers: response.headers }
  } catch (error) {
    return {
      status: 0,
      ms: performance.now() - began,
      body: String(error),
      headers: new Headers()
    }
  }
}

/** A 503 the API means: the database-unavailable problem with Retry-After. */
export const isUnavailable = (answer: Answer) =>
  answer.status === 503 &&
  answer.headers.get("retry-after") !== null &&
  answer.body?.type === "urn:jobq:problem:database-unavailable"

/** Enqueues with an idempotency key, retrying on 503 until accepted or `deadlineMs` passes. */
export const enqueueReliably = async (
  base: string,
  job: unknown,
  key: string,
  deadlineMs: number,
  seen: Map<number, number>
): Promise<string | undefined> => {
  const until = Date.now() + deadlineMs
  for (;;) {
    const answer = await call(base, "POST", "/jobs", job, { "idempotency-key": key }, 10_000)
    seen.set(answer.status, (seen.get(answer.status) ?? 0) + 1)
    if (answer.status === 201 || answer.status === 200) return answer.body.id as string
    if (answer.status !== 503 && answer.status !== 0) return undefined
    if (Date.now() > until) return undefined
    await Bun.sleep(100)
  }
}

export const percentile = (values: ReadonlyArray<number>, p: number) => {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! * 10) / 10
}
