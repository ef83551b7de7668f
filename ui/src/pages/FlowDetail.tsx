/**
 * One flow (GET /flows/{id}): its jobs in levels (a job's level is one more than its deepest dependency's,
 * so every job stands below what it waits for), each with its local name, status, kind, queue and the names
 * it waits for, linked to its job; cancel the flow, confirmed.
 */
import { useState } from "preact/hooks"
import { api, describeProblem, type Flow, type FlowJob } from "../api.ts"
import { Confirm, Notice, StatusBadge, time } from "../components.tsx"
import { usePolled } from "../hooks.ts"
import { href } from "../router.ts"

/** The jobs by level: level 0 waits for nothing; a job sits one level below its deepest dependency. */
export const levels = (jobs: ReadonlyArray<FlowJob>): Array<Array<FlowJob>> => {
  const byName = new Map(jobs.map((job) => [job.name, job]))
  const level = new Map<string, number>()
  // the API refuses cycles; the bound keeps a malformed answer from looping
  const depth = (job: FlowJob, seen: number): number => {
    const known = level.get(job.name)
    if (known !== undefined) return known
    if (seen > jobs.length) return 0
    let deepest = -1
    for (const name of job.dependsOn) {
      const parent = byName.get(name)
      if (parent !== undefined) deepest = Math.max(deepest, depth(parent, seen + 1))
    }
    level.set(job.name, deepest + 1)
    return deepest + 1
  }
  const out: Array<Array<FlowJob>> = []
  for (const job of jobs) {
    const at = depth(job, 0)
    const row = out[at] ?? []
    row.push(job)
    out[at] = row
  }
  return out.filter((row) => row !== undefined)
}

async function load(id: string): Promise<Flow | { missing: true }> {
  const result = await api.GET("/flows/{id}", { params: { path: { id } } })
  if (result.response.status === 404) return { missing: true }
  if (result.error !== undefined) throw new Error(describeProblem(result.error, result.response.status))
  return result.data
}

export function FlowDetail({ id }: { readonly id: string }) {
  const { data, error, reload } = usePolled(() => load(id), [id])
  const [confirming, setConfirming] = useState(false)
  const [message, setMessage] = useState<{ kind: "error" | "info"; text: string } | null>(null)

  const cancel = async () => {
    setConfirming(false)
    const result = await api.POST("/flows/{id}/cancel", { params: { path: { id } } })
    if (result.error !== undefined)
      setMessage({ kind: "error", text: describeProblem(result.error, result.response.status) })
    else
      setMessage({ kind: "info", text: "Flow cancelled: waiting jobs cancelled, running ones asked to stop" })
    void reload()
  }

  if (data === undefined) return error ? <Notice kind="error">{error}</Notice> : <p>Loading…</p>
  if ("missing" in data)
    return (
      <section>
        <h1>Flow {id}</h1>
        <Notice kind="error">No such flow.</Notice>
      </section>
    )
  const flow = data
  const unfinished = flow.jobs.filter(
    (job) => !["succeeded", "failed_permanent", "cancelled"].includes(job.status)
  )
  return (
    <section aria-labelledby="flow-title">
      <h1 id="flow-title">
        Flow <span class="mono">{flow.id}</span> <StatusBadge status={flow.status} />
      </h1>
      <dl class="facts">
        <dt>Created</dt>
        <dd>{time(flow.createdAt)}</dd>
        <dt>On failure</dt>
        <dd>
          {flow.onFailure === "cancel"
            ? "cancel: a dependency that fails or is cancelled cancels its dependents"
            : "wait: dependents stay blocked until the dependency is retried and succeeds"}
        </dd>
        <dt>Jobs</dt>
        <dd>
          {flow.jobs.length}, {unfinished.length} unfinished
        </dd>
        {flow.cancelledAt !== null && (
          <>
            <dt>Cancelled</dt>
            <dd>{time(flow.cancelledAt)}</dd>
          </>
        )}
      </dl>
      <div class="row" role="toolbar" aria-label="Flow actions">
        <button type="button" class="danger" onClick={() => setConfirming(true)}>
          Cancel flow
        </button>
      </div>
      {message && <Notice kind={message.kind}>{message.text}</Notice>}
      {error && <Notice kind="error">{error}</Notice>}
      <h2>Jobs by level</h2>
      <p class="muted">Each job runs once every job it waits for has succeeded.</p>
      <ol class="levels">
        {levels(flow.jobs).map((row, index) => (
          <li key={row[0]!.name}>
            <h3>Level {index}</h3>
            <ul class="flow-jobs">
              {row.map((job) => (
                <li key={job.name} class="card flow-job" data-name={job.name}>
                  <a href={href(`/jobs/${job.id}`)}>
                    <strong>{job.name}</strong>
                  </a>
                  <StatusBadge status={job.status} />
                  <div class="muted">
                    {job.kind} on {job.queue}
                    {job.attempts > 0 && `, ${job.attempts} attempt${job.attempts === 1 ? "" : "s"}`}
                  </div>
                  <div class="deps">
                    {job.dependsOn.length === 0 ? (
                      <span class="muted">waits for nothing</span>
                    ) : (
                      <>waits for {job.dependsOn.join(", ")}</>
                    )}
                  </div>
                  {job.lastError !== null && <pre>{job.lastError}</pre>}
                </li>
              ))}
            </ul>
          </li>
        ))}
      </ol>
      <Confirm
        open={confirming}
        title={`Cancel flow ${flow.id}?`}
        confirmLabel="Yes, cancel the flow"
        onConfirm={cancel}
        onCancel={() => setConfirming(false)}
      >
        Its {unfinished.length} unfinished jobs end: waiting ones are cancelled, running ones are asked to
        stop. Finished jobs stay as they are.
      </Confirm>
    </section>
  )
}
