/**
 * Live updates: polling at the chosen interval (off, 1-60 s), or the event stream (`GET /events`, "live"):
 * a page that names the events it shows reloads when one comes (at most once a second), polls every 30 s
 * as well, and every 5 s while the stream is down; a page that names none polls every 5 s. Both stop
 * while the tab is hidden.
 */
import { createContext } from "preact"
import { useContext, useEffect, useRef, useState } from "preact/hooks"
import { followEvents } from "./api.ts"

/** Seconds between polls; 0 is off, `live` the event stream. */
export const live = -1
export const intervals = [0, live, 1, 2, 5, 10, 30, 60] as const
const intervalKey = "jobq.poll"

export const PollContext = createContext<number>(5)

export const loadInterval = (): number => {
  const saved = Number(localStorage.getItem(intervalKey) ?? "5")
  return (intervals as ReadonlyArray<number>).includes(saved) ? saved : 5
}
export const saveInterval = (seconds: number) => localStorage.setItem(intervalKey, String(seconds))

/** Which events a page shows (`GET /events` filters); none: every event. */
export type EventFilter = Readonly<Record<"job" | "queue" | "kind", string | undefined>>

/**
 * Runs `load` now, whenever `deps` change, and every poll interval while the document is visible (or, in
 * live mode, when one of `events` comes); answers what it last loaded, its error, and a reload.
 */
export const usePolled = <A>(
  load: () => Promise<A>,
  deps: ReadonlyArray<unknown>,
  events?: Partial<EventFilter>
) => {
  const chosen = useContext(PollContext)
  const following = chosen === live && events !== undefined
  const [streamUp, setStreamUp] = useState(false)
  const seconds = chosen !== live ? chosen : following && streamUp ? 30 : 5
  const [state, setState] = useState<{ data?: A; error?: string; loading: boolean }>({ loading: true })
  const generation = useRef(0)
  const run = async () => {
    const mine = ++generation.current
    try {
      const data = await load()
      if (mine === generation.current) setState({ data, loading: false })
    } catch (error) {
      if (mine === generation.current)
        setState((s) => ({
          ...s,
          error: error instanceof Error ? error.message : String(error),
          loading: false
        }))
    }
  }
  useEffect(() => {
    setState({ loading: true })
    void run()
  }, deps)
  useEffect(() => {
    if (seconds === 0) return
    let timer: ReturnType<typeof setTimeout> | undefined
    const schedule = () => {
      timer = setTimeout(async () => {
        if (!document.hidden) await run()
        schedule()
      }, seconds * 1000)
    }
    const onVisibility = () => {
      if (!document.hidden) void run()
    }
    schedule()
    document.addEventListener("visibilitychange", onVisibility)
    return () => {
      clearTimeout(timer)
      document.removeEventListener("visibilitychange", onVisibility)
    }
  }, [seconds, ...deps])
  const eventKey = JSON.stringify(events ?? null)
  useEffect(() => {
    if (!following) return
    let stop: (() => void) | undefined
    let last = 0
    let pending: ReturnType<typeof setTimeout> | undefined
    // at most one reload a second, however many events come
    const onEvent = () => {
      if (pending !== undefined) return
      pending = setTimeout(
        () => {
          pending = undefined
          last = Date.now()
          void run()
        },
        Math.max(0, last + 1000 - Date.now())
      )
    }
    const open = () => {
      stop?.()
      stop = document.hidden ? undefined : followEvents(events ?? {}, onEvent, setStreamUp)
    }
    open()
    document.addEventListener("visibilitychange", open)
    return () => {
      document.removeEventListener("visibilitychange", open)
      clearTimeout(pending)
      stop?.()
      setStreamUp(false)
    }
  }, [following, eventKey, ...deps])
  return { ...state, reload: run }
}

/** Throws the problem of an openapi-fetch answer as an Error, or answers its data. */
export const ok = <D>(result: { data?: D; error?: unknown; response: Response }): D => {
  if (result.data !== undefined) return result.data
  const problem = (result.error ?? {}) as { title?: string; detail?: string }
  throw new Error(
    [String(result.response.status), problem.title, problem.detail]
      .filter((part) => part !== undefined)
      .join(" · ")
  )
}
