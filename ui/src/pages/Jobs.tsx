/**
 * Jobs: filters kept in the URL (a link reproduces the view), keyset pages, select and act (one bulk
 * batch), or act on every job the filter matches: a bulk operation the server runs in batches whether or
 * not this page stays open; the page follows its progress, and lists the latest operations with a cancel
 * for running ones (so a reopened tab sees them too).
 */
import { useEffect, useState } from "preact/hooks"
import { api, type BulkFilter, type BulkOperation, describeProblem, type Job, statuses } from "../api.ts"
import { Confirm, Notice, StatusBadge, time } from "../components.tsx"
import { ok, usePolled } from "../hooks.ts"
import { href, navigate, type Route } from "../router.ts"

const filterKeys = [
  "status",
  "queue",
  "kind",
  "id",
  "createdAfter",
  "createdBefore",
  "finishedAfter",
  "finishedBefore",
  "payload"
] as const
type FilterKey = (typeof filterKeys)[number]
type Filters = Partial<Record<FilterKey, string>>

type Action = "retry" | "cancel" | "delete"

const fromRoute = (params: URLSearchParams): Filters => {
  const filters: Filters = {}
  for (const key of filterKeys) {
    const value = params.get(key)
    if (value !== null && value !== "") filters[key] = value
  }
  return filters
}

/** A datetime-local value (local time) as an RFC 3339 instant; unchanged when it already is one. */
const instant = (value: string | undefined) =>
  value === undefined ? undefined : /[Zz]|[+-]\d\d:\d\d$/.test(value) ? value : new Date(value).toISOString()

const bulkFilter = (filters: Filters): BulkFilter => {
  const filter: Record<string, unknown> = {}
  for (const key of ["status", "queue", "kind", "payload"] as const)
    if (filters[key] !== undefined) filter[key] = filters[key]
  for (const key of ["createdAfter", "createdBefore", "finishedAfter", "finishedBefore"] as const)
    if (filters[key] !== undefined) filter[key] = instant(filters[key])
  if (filters.id !== undefined) filter.ids = [filters.id]
  return filter as BulkFilter
}

async function loadPage(filters: Filters, cursor: string | undefined) {
  if (filters.id !== undefined) {
    const result = await api.GET("/jobs/{id}", { params: { path: { id: filters.id } } })
    if (result.response.status === 404) return { jobs: [] as Array<Job>, nextCursor: null }
    return { jobs: [ok(result)], nextCursor: null }
  }
  const { id: _, ...rest } = filters
  const query = {
    ...rest,
    createdAfter: instant(rest.createdAfter),
    createdBefore: instant(rest.createdBefore),
    finishedAfter: instant(rest.finishedAfter),
    finishedBefore: instant(rest.finishedBefore),
    cursor,
    limit: 50
  } as Record<string, unknown>
  for (const key of Object.keys(query)) if (query[key] === undefined) delete query[key]
  return ok(await api.GET("/jobs", { params: { query } as never }))
}

function FilterForm({ filters }: { readonly filters: Filters }) {
  const submit = (event: Event) => {
    event.preventDefault()
    const data = new FormData(event.currentTarget as HTMLFormElement)
    const next: Record<string, string> = {}
    for (const key of filterKeys) {
      const value = String(data.get(key) ?? "").trim()
      if (value !== "") next[key] = value
    }
    navigate("/jobs", next)
  }
  const field = (key: FilterKey, label: string, props: Record<string, unknown> = {}) => (
    <label>
      {label} <input name={key} defaultValue={filters[key] ?? ""} {...props} />
    </label>
  )
  return (
    <form class="filters" onSubmit={submit} aria-label="Job filters" key={JSON.stringify(filters)}>
      <label>
        Status{" "}
        <select name="status" defaultValue={filters.status ?? ""}>
          <option value="">any</option>
          {statuses.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </label>
      {field("queue", "Queue", { size: 12 })}
      {field("kind", "Kind", { size: 12 })}
      {field("id", "Id", { size: 36 })}
      {field("createdAfter", "Created after", { placeholder: "2026-01-01T00:00:00Z", size: 22 })}
      {field("createdBefore", "Created before", { placeholder: "2026-01-02T00:00:00Z", size: 22 })}
      {field("finishedAfter", "Finished after", { size: 22 })}
      {field("finishedBefore", "Finished before", { size: 22 })}
      {field("payload", "Payload contains", { placeholder: '{"customer":42}', size: 24 })}
      <button type="submit">Apply filters</button>
      <a href={href("/jobs")}>Clear</a>
    </form>
  )
}

const summary = (op: BulkOperation) =>
  `${op.action} ${op.status === "running" ? "running" : op.status}: ${op.acted} of ${op.matched} matching jobs changed (${op.skipped} skipped) in ${op.batches} batch${op.batches === 1 ? "" : "es"}`

/** The latest bulk operations, their progress and a cancel for running ones. */
function Operations({ watching }: { readonly watching: string | null }) {
  const { data, error, reload } = usePolled(async () => ok(await api.GET("/bulk-operations")), [watching])
  const [message, setMessage] = useState<string | null>(null)
  const running = data?.operations.some((op) => op.status === "running") ?? false
  // while one runs, its progress is read every second whatever the refresh setting
  useEffect(() => {
    if (!running) return
    const timer = setInterval(() => {
      if (!document.hidden) void reload()
    }, 1000)
    return () => clearInterval(timer)
  }, [running])
  const operations = data?.operations ?? []
  if (operations.length === 0 && error === undefined) return null
  return (
    <section aria-labelledby="operations-title">
      <h2 id="operations-title">Bulk operations</h2>
      {error && <Notice kind="error">{error}</Notice>}
      {message && <Notice kind="error">{message}</Notice>}
      <ul class="operations">
        {operations.slice(0, 5).map((op) => (
          <li key={op.id} data-operation={op.id}>
            <span class="mono">{time(op.createdAt)}</span> {summary(op)}
            {op.error !== null && <span class="muted"> · {op.error.split("\n")[0]}</span>}{" "}
            {op.status === "running" && (
              <button
                type="button"
                onClick={async () => {
                  const result = await api.POST("/bulk-operations/{id}/cancel", {
                    params: { path: { id: op.id } }
                  })
                  setMessage(
                    result.error === undefined ? null : describeProblem(result.error, result.response.status)
                  )
                  void reload()
                }}
              >
                Stop {op.action}
              </button>
            )}
          </li>
        ))}
      </ul>
    </section>
  )
}

export function Jobs({ route }: { readonly route: Route }) {
  const filters = fromRoute(route.params)
  const cursor = route.params.get("cursor") ?? undefined
  const key = route.params.toString()
  const { data, error, reload } = usePolled(
    () => loadPage(filters, cursor),
    [key],
    filters.id !== undefined ? { job: filters.id } : { queue: filters.queue, kind: filters.kind }
  )
  const [watching, setWatching] = useState<string | null>(null)
  const [selected, setSelected] = useState<ReadonlySet<string>>(new Set())
  const [pending, setPending] = useState<{ action: Action; scope: "selected" | "all" } | null>(null)
  const [progress, setProgress] = useState<string | null>(null)
  const [message, setMessage] = useState<{ kind: "error" | "info"; text: string } | null>(null)

  const toggle = (id: string) =>
    setSelected((current) => {
      const next = new Set(current)
      if (next.has(id)) next.delete(id)
      else next.add(id)
      return next
    })

  const run = async () => {
    if (pending === null) return
    const { action, scope } = pending
    setPending(null)
    setMessage(null)
    if (scope === "all") {
      // the server runs it; this page only follows it (closing the page does not stop it)
      const started = await api.POST("/bulk-operations", { body: { action, filter: bulkFilter(filters) } })
      if (started.error !== undefined) {
        setMessage({
          kind: "error",
          text: `${action} not started: ${describeProblem(started.error, started.response.status)}`
        })
        return
      }
      setWatching(started.data.id)
      return
    }
    const result = await api.POST("/jobs/bulk", { body: { action, filter: { ids: [...selected] } } })
    if (result.error !== undefined)
      setMessage({
        kind: "error",
        text: `${action}: ${describeProblem(result.error, result.response.status)}`
      })
    else
      setMessage({
        kind: "info",
        text: `${action} finished: ${result.data.acted} of ${result.data.matched} selected jobs changed (${result.data.skipped} skipped)`
      })
    setSelected(new Set())
    void reload()
  }

  // the operation this page started: its progress until it ends
  useEffect(() => {
    if (watching === null) return
    let stopped = false
    const follow = async () => {
      while (!stopped) {
        const result = await api.GET("/bulk-operations/{id}", { params: { path: { id: watching } } })
        if (stopped) return
        if (result.error !== undefined) {
          setMessage({ kind: "error", text: describeProblem(result.error, result.response.status) })
          break
        }
        const op = result.data
        if (op.status === "running") setProgress(summary(op))
        else {
          setMessage({
            kind: op.status === "failed" ? "error" : "info",
            text: `${op.action} ${op.status === "succeeded" ? "finished" : op.status}: ${op.acted} of ${op.matched} matching jobs changed (${op.skipped} skipped) in ${op.batches} batch${op.batches === 1 ? "" : "es"}`
          })
          break
        }
        await new Promise((resolve) => setTimeout(resolve, 500))
      }
      setProgress(null)
      setWatching(null)
      void reload()
    }
    void follow()
    return () => {
      stopped = true
    }
  }, [watching])

  const jobs = data?.jobs ?? []
  const allChecked = jobs.length > 0 && jobs.every((j) => selected.has(j.id))
  return (
    <section aria-labelledby="jobs-title">
      <h1 id="jobs-title">Jobs</h1>
      <FilterForm filters={filters} />
      <div class="row toolbar" role="toolbar" aria-label="Actions">
        <span>{selected.size} selected</span>
        {(["retry", "cancel", "delete"] as const).map((action) => (
          <button
            key={action}
            type="button"
            disabled={selected.size === 0}
            onClick={() => setPending({ action, scope: "selected" })}
          >
            {action[0]!.toUpperCase() + action.slice(1)} selected
          </button>
        ))}
        {(["retry", "cancel", "delete"] as const).map((action) => (
          <button key={`all-${action}`} type="button" onClick={() => setPending({ action, scope: "all" })}>
            {action[0]!.toUpperCase() + action.slice(1)} all matching
          </button>
        ))}
      </div>
      {progress && (
        <p role="status" class="notice info" data-testid="bulk-progress">
          {progress}
        </p>
      )}
      {message && <Notice kind={message.kind}>{message.text}</Notice>}
      {error && <Notice kind="error">{error}</Notice>}
      <Operations watching={watching} />
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">
                <input
                  type="checkbox"
                  aria-label="Select every job on this page"
                  checked={allChecked}
                  onChange={() => setSelected(allChecked ? new Set() : new Set(jobs.map((j) => j.id)))}
                />
              </th>
              <th scope="col">Id</th>
              <th scope="col">Status</th>
              <th scope="col">Queue</th>
              <th scope="col">Kind</th>
              <th scope="col">Attempts</th>
              <th scope="col">Created</th>
              <th scope="col">Finished</th>
            </tr>
          </thead>
          <tbody>
            {data !== undefined && jobs.length === 0 && (
              <tr>
                <td colSpan={8}>No job on this page matches.</td>
              </tr>
            )}
            {jobs.map((job) => (
              <tr key={job.id}>
                <td>
                  <input
                    type="checkbox"
                    aria-label={`Select job ${job.id}`}
                    checked={selected.has(job.id)}
                    onChange={() => toggle(job.id)}
                  />
                </td>
                <td class="mono">
                  <a href={href(`/jobs/${job.id}`)}>{job.id}</a>
                </td>
                <td>
                  <StatusBadge status={job.status} />
                </td>
                <td>{job.queue}</td>
                <td>{job.kind}</td>
                <td>
                  {job.attempts}/{job.maxAttempts}
                </td>
                <td>{time(job.createdAt)}</td>
                <td>{time(job.finishedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <nav class="row" aria-label="Pages">
        {cursor !== undefined && <a href={href("/jobs", { ...filters })}>First page</a>}
        {data?.nextCursor && <a href={href("/jobs", { ...filters, cursor: data.nextCursor })}>Next page</a>}
      </nav>
      <Confirm
        open={pending !== null}
        title={
          pending === null
            ? ""
            : pending.scope === "selected"
              ? `${pending.action} ${selected.size} selected job(s)?`
              : `${pending.action} every job matching the filter?`
        }
        confirmLabel={pending === null ? "" : `Yes, ${pending.action}`}
        onConfirm={run}
        onCancel={() => setPending(null)}
      >
        {pending?.scope === "all"
          ? "The server goes through every matching job in batches of 500, and goes on if you close this page (its progress is listed here); jobs in a state the action does not apply to are skipped."
          : "Jobs in a state the action does not apply to are skipped."}
      </Confirm>
    </section>
  )
}
