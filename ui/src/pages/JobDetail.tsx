/**
 * One job: a timeline (created, due, each attempt's start and end, with wait and run times) and the same
 * attempts as a table, every attempt's error, the enqueuing request's trace id (a link when
 * DASHBOARD_TRACE_URL is set), payload / result / progress read losslessly; retry, run now, cancel,
 * delete, each confirmed. Refreshed by polling or, when chosen, by the job's events.
 */
import { useEffect, useState } from "preact/hooks"
import { api, dashboardSettings, describeProblem, getJobText, type Job } from "../api.ts"
import { between, Confirm, duration, Notice, StatusBadge, time } from "../components.tsx"
import { usePolled } from "../hooks.ts"
import { JsonView, type Lossless, member, parseLossless } from "../json.tsx"
import { href, navigate } from "../router.ts"

type Action = "retry" | "cancel" | "delete" | "run now"

async function load(id: string): Promise<{ job: Job; raw: Lossless } | { missing: true }> {
  const { status, text } = await getJobText(id)
  if (status === 404) return { missing: true }
  if (status !== 200) {
    let problem: unknown
    try {
      problem = JSON.parse(text)
    } catch {}
    throw new Error(describeProblem(problem, status))
  }
  return { job: JSON.parse(text) as Job, raw: parseLossless(text) }
}

/** A trace id, linked to the tracing UI when DASHBOARD_TRACE_URL names one. */
function TraceLink({ traceId }: { readonly traceId: string }) {
  const [template, setTemplate] = useState<string | null>(null)
  useEffect(() => {
    void dashboardSettings().then((s) => setTemplate(s.traceUrl))
  }, [])
  if (template === null) return <span>{traceId}</span>
  return (
    <a href={template.replaceAll("{traceId}", encodeURIComponent(traceId))} target="_blank" rel="noreferrer">
      {traceId}
    </a>
  )
}

/** One attempt as the timeline and the attempts table show it. */
interface Attempt {
  readonly attempt: number
  readonly dueAt?: string | undefined
  readonly startedAt?: string | undefined
  readonly endedAt?: string | undefined
  readonly outcome: string
  readonly retryDelayMs?: number | null | undefined
}

/**
 * Every attempt: the ended ones from `errors` (their due, start and end, as the server recorded them), then
 * the current or last one from the job's own columns (a claim leaves `runAt` as the instant it was due).
 */
const attemptsOf = (job: Job): ReadonlyArray<Attempt> => {
  const ended: Array<Attempt> = job.errors.map((e) => ({
    attempt: e.attempt,
    dueAt: e.dueAt,
    startedAt: e.startedAt,
    endedAt: e.at,
    outcome: `attempt ${e.attempt} failed`,
    retryDelayMs: e.retryDelayMs
  }))
  const recorded = job.startedAt !== null && job.errors.some((e) => e.startedAt === job.startedAt)
  if (job.startedAt === null || recorded) return ended
  const current: Attempt = {
    attempt: job.attempts,
    dueAt: job.runAt,
    startedAt: job.startedAt,
    ...(job.finishedAt === null ? {} : { endedAt: job.finishedAt }),
    outcome: job.status === "running" ? "running" : job.status
  }
  return [...ended, current]
}

export function JobDetail({ id }: { readonly id: string }) {
  const { data, error, reload } = usePolled(() => load(id), [id], { job: id })
  const [pending, setPending] = useState<Action | null>(null)
  const [message, setMessage] = useState<{ kind: "error" | "info"; text: string } | null>(null)

  const act = async () => {
    const action = pending
    setPending(null)
    const path = { params: { path: { id } } }
    const result =
      action === "retry"
        ? await api.POST("/jobs/{id}/retry", path)
        : action === "run now"
          ? await api.POST("/jobs/{id}/run-now", path)
          : action === "cancel"
            ? await api.POST("/jobs/{id}/cancel", path)
            : await api.DELETE("/jobs/{id}", path)
    if (result.error !== undefined) {
      setMessage({ kind: "error", text: describeProblem(result.error, result.response.status) })
      return
    }
    if (action === "delete") {
      navigate("/jobs")
      return
    }
    setMessage({
      kind: "info",
      text: action === "retry" ? "Queued again" : action === "run now" ? "Due now" : "Cancel sent"
    })
    void reload()
  }

  if (data === undefined) return error ? <Notice kind="error">{error}</Notice> : <p>Loading…</p>
  if ("missing" in data)
    return (
      <section>
        <h1>Job {id}</h1>
        <Notice kind="error">No such job (it may have been deleted or pruned).</Notice>
      </section>
    )
  const { job, raw } = data
  const attempts = attemptsOf(job)
  const events: Array<{ at: string; label: string; detail?: string }> = [
    { at: job.createdAt, label: "created" },
    ...(job.runAt > job.createdAt &&
    (job.status === "queued" || job.status === "retrying" || job.attempts <= 1)
      ? [{ at: job.runAt, label: "due" }]
      : []),
    ...attempts.flatMap((a) => [
      ...(a.startedAt === undefined
        ? []
        : [
            {
              at: a.startedAt,
              label: `attempt ${a.attempt} started`,
              detail: `waited ${duration(between(a.dueAt, a.startedAt))}`
            }
          ]),
      ...(a.endedAt === undefined
        ? []
        : [
            {
              at: a.endedAt,
              label: a.outcome,
              detail: [
                a.startedAt === undefined ? undefined : `ran ${duration(between(a.startedAt, a.endedAt))}`,
                a.retryDelayMs == null ? undefined : `retry in ${duration(a.retryDelayMs)}`
              ]
                .filter((part) => part !== undefined)
                .join(" · ")
            }
          ])
    ])
  ]
    .map((e): { at: string; label: string; detail?: string } =>
      "detail" in e && e.detail === "" ? { at: e.at, label: e.label } : e
    )
    .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0))

  return (
    <section aria-labelledby="job-title">
      <h1 id="job-title">
        Job <span class="mono">{job.id}</span> <StatusBadge status={job.status} />
      </h1>
      <dl class="facts">
        <dt>Queue</dt>
        <dd>{job.queue}</dd>
        <dt>Kind</dt>
        <dd>{job.kind}</dd>
        <dt>Attempts</dt>
        <dd>
          {job.attempts} of {job.maxAttempts}
          {job.snoozes > 0 && `, ${job.snoozes} snoozes`}
        </dd>
        <dt>Priority</dt>
        <dd>{job.priority}</dd>
        {job.flowId !== null && (
          <>
            <dt>Flow</dt>
            <dd>
              <a href={href(`/flows/${job.flowId}`)}>
                {job.flowName ?? "?"} in flow <span class="mono">{job.flowId}</span>
              </a>
            </dd>
          </>
        )}
        {job.traceId !== null && (
          <>
            <dt>Trace</dt>
            <dd class="mono" data-testid="trace-id">
              <TraceLink traceId={job.traceId} />
            </dd>
          </>
        )}
        {job.idempotencyKey !== null && (
          <>
            <dt>Idempotency key</dt>
            <dd class="mono">{job.idempotencyKey}</dd>
          </>
        )}
        {job.leaseOwner !== null && (
          <>
            <dt>Held by</dt>
            <dd class="mono">{job.leaseOwner}</dd>
          </>
        )}
      </dl>
      <div class="row" role="toolbar" aria-label="Job actions">
        <button type="button" onClick={() => setPending("retry")}>
          Retry
        </button>
        <button type="button" onClick={() => setPending("run now")}>
          Run now
        </button>
        <button type="button" onClick={() => setPending("cancel")}>
          Cancel
        </button>
        <button type="button" class="danger" onClick={() => setPending("delete")}>
          Delete
        </button>
      </div>
      {message && <Notice kind={message.kind}>{message.text}</Notice>}
      {error && <Notice kind="error">{error}</Notice>}
      <h2>Timeline</h2>
      <ol class="timeline">
        {events.map((event) => (
          <li key={`${event.at}-${event.label}`}>
            <time dateTime={event.at}>{time(event.at)}</time> <strong>{event.label}</strong>
            {event.detail !== undefined && <span class="muted"> · {event.detail}</span>}
          </li>
        ))}
      </ol>
      <h2>Attempts</h2>
      {attempts.length === 0 ? (
        <p class="muted">No attempt started yet.</p>
      ) : (
        <div class="table-wrap">
          <table aria-label="Attempts">
            <thead>
              <tr>
                <th scope="col">Attempt</th>
                <th scope="col">Due</th>
                <th scope="col">Started</th>
                <th scope="col">Ended</th>
                <th scope="col">Wait</th>
                <th scope="col">Run</th>
                <th scope="col">Outcome</th>
              </tr>
            </thead>
            <tbody>
              {attempts.map((a) => (
                <tr key={`${a.attempt}-${a.endedAt ?? "now"}`}>
                  <td>{a.attempt}</td>
                  <td>{time(a.dueAt)}</td>
                  <td>{time(a.startedAt)}</td>
                  <td>{time(a.endedAt)}</td>
                  <td>{duration(between(a.dueAt, a.startedAt))}</td>
                  <td>{duration(between(a.startedAt, a.endedAt))}</td>
                  <td>{a.outcome}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <h2>Errors</h2>
      {job.errors.length === 0 ? (
        <p class="muted">No attempt failed.</p>
      ) : (
        <ol class="errors">
          {job.errors.map((e) => (
            <li key={`${e.attempt}-${e.at}`}>
              <strong>Attempt {e.attempt}</strong> <span class="muted">{time(e.at)}</span>
              <pre>{e.error}</pre>
            </li>
          ))}
        </ol>
      )}
      <h2>Payload</h2>
      <JsonView value={member(raw, "payload")} label="Payload" />
      <h2>Result</h2>
      <JsonView value={member(raw, "result")} label="Result" />
      <h2>Progress</h2>
      <JsonView value={member(raw, "progress")} label="Progress" />
      <Confirm
        open={pending !== null}
        title={`${pending ?? ""} job ${job.id}?`}
        confirmLabel={pending === null ? "" : `Yes, ${pending}`}
        onConfirm={act}
        onCancel={() => setPending(null)}
      >
        {pending === "delete"
          ? "The job and its history are removed for good."
          : pending === "cancel"
            ? "A queued job will not run; a running one is interrupted by its worker."
            : pending === "run now"
              ? "Its delay or retry back-off is skipped: it is due now (a paused or limited queue still holds it)."
              : "The job runs again with fresh attempts."}
      </Confirm>
    </section>
  )
}
