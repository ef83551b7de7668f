/** Live updates: polling at the chosen interval (off, 1-60 s), paused while the tab is hidden. */
import { createContext } from "preact"
import { useContext, useEffect, useRef, useState } from "preact/hooks"

export const intervals = [0, 1, 2, 5, 10, 30, 60] as const
const intervalKey = "jobq.poll"

export const PollContext = createContext<number>(5)

export const loadInterval = (): number => {
  const saved = Number(localStorage.getItem(intervalKey) ?? "5")
  return (intervals as ReadonlyArray<number>).includes(saved) ? saved : 5
}
export const saveInterval = (seconds: number) => localStorage.setItem(intervalKey, String(seconds))

/**
 * Runs `load` now, whenever `deps` change, and every poll interval while the document is visible;
 * answers what it last loaded, its error, and a reload.
 */
export const usePolled = <A>(load: () => Promise<A>, deps: ReadonlyArray<unknown>) => {
  const seconds = useContext(PollContext)
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
