/**
 * The dashboard's one way to the server: the API's documented endpoints, typed by the types generated from
 * the OpenAPI document (test/api/client/schema.ts), so an API change that breaks the dashboard fails
 * `npm run typecheck`. The API's root is the parent of the dashboard's own URL (`<prefix>/ui/` -> `<prefix>/`):
 * found at run time, so any proxy prefix works.
 */
import createClient, { type Middleware } from "openapi-fetch"
import type { components, paths } from "../../test/api/client/schema.ts"

export type Job = components["schemas"]["Job"]
export type Stats = components["schemas"]["Stats"]
export type QueueInfo = components["schemas"]["Queue"]
export type WorkerInfo = components["schemas"]["Worker"]
export type BulkBatch = components["schemas"]["BulkBatch"]
export type BulkOperation = components["schemas"]["BulkOperation"]
export type BulkFilter = components["schemas"]["BulkFilter"]
export type Schedule = components["schemas"]["ScheduleInfo"]
export type Flow = components["schemas"]["Flow"]
export type FlowJob = components["schemas"]["FlowJob"]
export type JobStatus = Job["status"]

export const statuses: ReadonlyArray<JobStatus> = [
  "queued",
  "running",
  "retrying",
  "blocked",
  "succeeded",
  "failed_permanent",
  "cancelled"
]

export const apiRoot = new URL("../", document.baseURI).href.replace(/\/$/, "")

const tokenKey = "jobq.token"
export const token = {
  get: (): string | null => sessionStorage.getItem(tokenKey),
  set: (value: string) => sessionStorage.setItem(tokenKey, value),
  clear: () => sessionStorage.removeItem(tokenKey)
}

/** Listeners told when the server answers 401: the shell then asks for a token. */
const unauthorizedListeners = new Set<() => void>()
export const onUnauthorized = (listener: () => void) => {
  unauthorizedListeners.add(listener)
  return () => unauthorizedListeners.delete(listener)
}

const auth: Middleware = {
  onRequest({ request }) {
    const value = token.get()
    if (value !== null) request.headers.set("authorization", `Bearer ${value}`)
    return request
  },
  onResponse({ response }) {
    if (response.status === 401) for (const listener of unauthorizedListeners) listener()
    return response
  }
}

export const api = createClient<paths>({ baseUrl: apiRoot })
api.use(auth)

/** A problem document's fields the dashboard shows. */
export interface Problem {
  readonly status?: number
  readonly title?: string
  readonly detail?: string
  readonly errors?: ReadonlyArray<{ readonly path: ReadonlyArray<string | number>; readonly message: string }>
}

/** One line for an error answer. */
export const describeProblem = (problem: unknown, status?: number): string => {
  const p = (problem ?? {}) as Problem
  const code = p.status ?? status
  return [code === undefined ? undefined : String(code), p.title, p.detail].filter(Boolean).join(" · ")
}

/** A job read as text and parsed losslessly (big integers in payload, result, progress keep every digit). */
export const getJobText = async (id: string): Promise<{ status: number; text: string }> => {
  const headers: Record<string, string> = {}
  const value = token.get()
  if (value !== null) headers.authorization = `Bearer ${value}`
  const response = await fetch(`${apiRoot}/jobs/${encodeURIComponent(id)}`, { headers })
  if (response.status === 401) for (const listener of unauthorizedListeners) listener()
  return { status: response.status, text: await response.text() }
}

/** The shell's own settings (`config.json` beside it, no data): where a trace id links to. */
export interface DashboardSettings {
  readonly traceUrl: string | null
}
let settings: Promise<DashboardSettings> | undefined
export const dashboardSettings = (): Promise<DashboardSettings> => {
  settings ??= fetch(new URL("config.json", document.baseURI))
    .then((response) => (response.ok ? (response.json() as Promise<DashboardSettings>) : { traceUrl: null }))
    .catch(() => ({ traceUrl: null }))
  return settings
}

/**
 * Follows `GET /events` with the token (an `EventSource` cannot send one), calling `onEvent` for every
 * event (a `reset` included) and `onState` with whether the stream is up; reconnects after 2 s when it
 * ends or fails. Answers a stop.
 */
export const followEvents = (
  filter: Readonly<Partial<Record<"job" | "queue" | "kind", string | undefined>>>,
  onEvent: () => void,
  onState: (up: boolean) => void
): (() => void) => {
  const abort = new AbortController()
  const query = new URLSearchParams()
  for (const [key, value] of Object.entries(filter))
    if (value !== undefined && value !== "") query.set(key, value)
  let lastId: string | undefined
  let retry: ReturnType<typeof setTimeout> | undefined
  const connect = async () => {
    const headers: Record<string, string> = { accept: "text/event-stream" }
    const value = token.get()
    if (value !== null) headers.authorization = `Bearer ${value}`
    if (lastId !== undefined) headers["last-event-id"] = lastId
    try {
      const response = await fetch(`${apiRoot}/events?${query}`, { headers, signal: abort.signal })
      if (response.status === 401) for (const listener of unauthorizedListeners) listener()
      if (!response.ok || response.body === null) throw new Error(String(response.status))
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
      let buffer = ""
      for (;;) {
        const { done, value: chunk } = await reader.read()
        if (done) break
        buffer += chunk
        let end = buffer.indexOf("\n\n")
        while (end >= 0) {
          const message = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          end = buffer.indexOf("\n\n")
          if (message.startsWith(": open")) onState(true)
          const id = /^id: (.*)$/m.exec(message)?.[1]
          if (id !== undefined) lastId = id
          if (/^event: /m.test(message)) onEvent()
        }
      }
    } catch {
      // aborted, refused or broken: polling covers the gap
    }
    onState(false)
    if (!abort.signal.aborted) retry = setTimeout(connect, 2000)
  }
  void connect()
  return () => {
    abort.abort()
    clearTimeout(retry)
  }
}
