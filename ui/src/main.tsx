/** The dashboard's shell: navigation, live-update interval, colour scheme, the token prompt, the pages. */
import { render } from "preact"
import { useEffect, useState } from "preact/hooks"
import { onUnauthorized, token } from "./api.ts"
import { intervals, live, loadInterval, PollContext, saveInterval } from "./hooks.ts"
import { Enqueue } from "./pages/Enqueue.tsx"
import { FlowDetail } from "./pages/FlowDetail.tsx"
import { JobDetail } from "./pages/JobDetail.tsx"
import { Jobs } from "./pages/Jobs.tsx"
import { Overview } from "./pages/Overview.tsx"
import { Queues } from "./pages/Queues.tsx"
import { Schedules } from "./pages/Schedules.tsx"
import { Workers } from "./pages/Workers.tsx"
import { href, type Route, useRoute } from "./router.ts"

type Scheme = "auto" | "light" | "dark"
const schemeKey = "jobq.scheme"
const applyScheme = (scheme: Scheme) => {
  if (scheme === "auto") delete document.documentElement.dataset.scheme
  else document.documentElement.dataset.scheme = scheme
}

function TokenPrompt({ onDone }: { readonly onDone: () => void }) {
  const submit = (event: Event) => {
    event.preventDefault()
    const value = String(new FormData(event.currentTarget as HTMLFormElement).get("token") ?? "").trim()
    if (value !== "") token.set(value)
    onDone()
  }
  return (
    <section class="card token" aria-labelledby="token-title">
      <h1 id="token-title">A token is needed</h1>
      <p>
        This API requires a bearer token (API_TOKENS, or a read-only one from API_READ_TOKENS). It is kept in
        this tab only.
      </p>
      <form onSubmit={submit}>
        <label>
          Token <input name="token" type="password" autoComplete="off" required />
        </label>{" "}
        <button type="submit">Use token</button>
      </form>
    </section>
  )
}

const pages = [
  ["/", "Overview"],
  ["/jobs", "Jobs"],
  ["/queues", "Queues"],
  ["/schedules", "Schedules"],
  ["/workers", "Workers"],
  ["/enqueue", "Enqueue"]
] as const

function Page({ route }: { readonly route: Route }) {
  const detail = /^\/jobs\/([^/]+)$/.exec(route.path)
  if (detail !== null) return <JobDetail id={decodeURIComponent(detail[1]!)} />
  const flow = /^\/flows\/([^/]+)$/.exec(route.path)
  if (flow !== null) return <FlowDetail id={decodeURIComponent(flow[1]!)} />
  switch (route.path) {
    case "/jobs":
      return <Jobs route={route} />
    case "/queues":
      return <Queues />
    case "/schedules":
      return <Schedules />
    case "/workers":
      return <Workers />
    case "/enqueue":
      return <Enqueue />
    default:
      return <Overview />
  }
}

function App() {
  const route = useRoute()
  const [seconds, setSeconds] = useState(loadInterval)
  const [scheme, setScheme] = useState<Scheme>(
    () => (localStorage.getItem(schemeKey) as Scheme | null) ?? "auto"
  )
  const [needsToken, setNeedsToken] = useState(false)
  const [session, setSession] = useState(0)
  useEffect(() => onUnauthorized(() => setNeedsToken(true)), [])
  useEffect(() => {
    applyScheme(scheme)
    localStorage.setItem(schemeKey, scheme)
  }, [scheme])
  const section = route.path.startsWith("/jobs") ? "/jobs" : route.path
  return (
    <PollContext.Provider value={seconds}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <nav aria-label="Dashboard">
          <strong class="brand">jobq</strong>
          {pages.map(([path, label]) => (
            <a key={path} href={href(path)} aria-current={section === path ? "page" : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <div class="controls">
          <label>
            Refresh{" "}
            <select
              value={String(seconds)}
              onChange={(e) => {
                const value = Number(e.currentTarget.value)
                setSeconds(value)
                saveInterval(value)
              }}
            >
              {intervals.map((s) => (
                <option key={s} value={String(s)}>
                  {s === 0 ? "off" : s === live ? "live (events)" : `${s} s`}
                </option>
              ))}
            </select>
          </label>
          <label>
            Theme{" "}
            <select value={scheme} onChange={(e) => setScheme(e.currentTarget.value as Scheme)}>
              <option value="auto">system</option>
              <option value="light">light</option>
              <option value="dark">dark</option>
            </select>
          </label>
          {token.get() !== null && (
            <button
              type="button"
              onClick={() => {
                token.clear()
                setNeedsToken(true)
              }}
            >
              Forget token
            </button>
          )}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {needsToken ? (
          <TokenPrompt
            onDone={() => {
              setNeedsToken(false)
              setSession((n) => n + 1)
            }}
          />
        ) : (
          <Page key={`${session}-${scheme}`} route={route} />
        )}
      </main>
    </PollContext.Provider>
  )
}

const root = document.getElementById("app")
if (root !== null) {
  root.textContent = ""
  render(<App />, root)
  document.documentElement.dataset.ready = "true"
}
