/**
 * Schedules: every cron schedule with its expression, zone, kind, queue and policies, its pause (and why),
 * its next fire times in its own zone and its last run; pause (with a reason), resume and trigger, each
 * confirmed, through the documented /schedules endpoints.
 */
import { useState } from "preact/hooks"
import { api, describeProblem, type Schedule } from "../api.ts"
import { Confirm, Notice, StatusBadge, time } from "../components.tsx"
import { ok, usePolled } from "../hooks.ts"
import { href } from "../router.ts"

type Action = "pause" | "resume" | "trigger"

/** Most pages of schedules one view reads (500 each): a bound, not a limit anyone should reach. */
const maxPages = 10

/** A fire time as the API gives it (ISO 8601 with the zone's offset), read in that zone: "2026-12-05 06:00 +01:00". */
export const zoned = (iso: string) => {
  const match = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(?::(\d{2}))?(?:\.\d+)?(Z|[+-]\d{2}:\d{2})$/.exec(iso)
  if (match === null) return iso
  const seconds = match[3] !== undefined && match[3] !== "00" ? `:${match[3]}` : ""
  return `${match[1]} ${match[2]}${seconds} ${match[4] === "Z" ? "+00:00" : match[4]}`
}

function ScheduleCard({
  schedule,
  onChanged
}: {
  readonly schedule: Schedule
  readonly onChanged: () => void
}) {
  const [reason, setReason] = useState("")
  const [confirming, setConfirming] = useState<Action | null>(null)
  const [message, setMessage] = useState<{ kind: "error" | "info"; text: string; jobId?: string } | null>(
    null
  )
  const id = `sch-${schedule.name.replace(/[^A-Za-z0-9_-]/g, "_")}`
  const path = { params: { path: { name: schedule.name } } }

  const act = async () => {
    const action = confirming
    setConfirming(null)
    if (action === "trigger") {
      const result = await api.POST("/schedules/{name}/trigger", path)
      if (result.error !== undefined)
        setMessage({ kind: "error", text: describeProblem(result.error, result.response.status) })
      else setMessage({ kind: "info", text: "Triggered: job", jobId: result.data.jobId })
    } else {
      const result =
        action === "pause"
          ? await api.POST("/schedules/{name}/pause", {
              ...path,
              body: reason.trim() === "" ? null : { reason: reason.trim(), by: "dashboard" }
            })
          : await api.POST("/schedules/{name}/resume", path)
      if (result.error !== undefined)
        setMessage({ kind: "error", text: describeProblem(result.error, result.response.status) })
      else setMessage({ kind: "info", text: result.data.message })
    }
    onChanged()
  }

  const last = schedule.lastRun
  return (
    <article class={`card schedule${schedule.paused ? " paused" : ""}`} aria-labelledby={`${id}-name`}>
      <header>
        <h2 id={`${id}-name`}>
          {schedule.name}
          {schedule.paused && <span class="badge s-paused">paused</span>}
        </h2>
      </header>
      <dl class="facts">
        <dt>Cron</dt>
        <dd class="mono">{schedule.cron}</dd>
        <dt>Zone</dt>
        <dd>{schedule.timeZone}</dd>
        <dt>Runs</dt>
        <dd>
          kind {schedule.kind} on queue{" "}
          <a href={href("/jobs", { queue: schedule.queue })}>{schedule.queue}</a>, priority{" "}
          {schedule.priority}, {schedule.maxAttempts} attempts
        </dd>
        <dt>Policies</dt>
        <dd>
          catch up {schedule.catchUp} (backfill {schedule.backfill}), overlap {schedule.overlap}; defined in{" "}
          {schedule.source}
        </dd>
        {schedule.pause !== null && (
          <>
            <dt>Paused</dt>
            <dd>
              since {time(schedule.pause.at)}
              {schedule.pause.by !== null && ` by ${schedule.pause.by}`}
              {schedule.pause.reason !== null && `: ${schedule.pause.reason}`}
            </dd>
          </>
        )}
        <dt>Next</dt>
        <dd>
          {schedule.nextFireTimes.length === 0 ? (
            <span class="muted">none while paused</span>
          ) : (
            <ul class="fires" aria-label={`Next fire times of ${schedule.name}, in ${schedule.timeZone}`}>
              {schedule.nextFireTimes.map((at) => (
                <li key={at}>
                  <time dateTime={at}>{zoned(at)}</time>
                </li>
              ))}
            </ul>
          )}
        </dd>
        <dt>Last run</dt>
        <dd>
          {last === null ? (
            <span class="muted">never</span>
          ) : (
            <>
              <a class="mono" href={href(`/jobs/${last.jobId}`)}>
                {last.jobId}
              </a>
              {last.status === null ? (
                <span class="muted"> (pruned)</span>
              ) : (
                <StatusBadge status={last.status} />
              )}
              <span class="muted"> {last.slot === null ? "triggered" : `slot ${time(last.slot)}`}</span>
            </>
          )}
        </dd>
      </dl>
      <div class="row" role="toolbar" aria-label={`Actions on ${schedule.name}`}>
        {schedule.paused ? (
          <button type="button" onClick={() => setConfirming("resume")}>
            Resume {schedule.name}
          </button>
        ) : (
          <>
            <label>
              Reason{" "}
              <input value={reason} onInput={(e) => setReason(e.currentTarget.value)} maxLength={500} />
            </label>
            <button type="button" onClick={() => setConfirming("pause")}>
              Pause {schedule.name}
            </button>
          </>
        )}
        <button type="button" onClick={() => setConfirming("trigger")}>
          Trigger {schedule.name}
        </button>
      </div>
      {message && (
        <Notice kind={message.kind}>
          {message.text}
          {message.jobId !== undefined && (
            <>
              {" "}
              <a class="mono" href={href(`/jobs/${message.jobId}`)}>
                {message.jobId}
              </a>
            </>
          )}
        </Notice>
      )}
      <Confirm
        open={confirming !== null}
        title={`${confirming === null ? "" : confirming[0]!.toUpperCase() + confirming.slice(1)} schedule ${schedule.name}?`}
        confirmLabel={confirming === "pause" ? "Pause" : confirming === "resume" ? "Resume" : "Trigger now"}
        onConfirm={act}
        onCancel={() => setConfirming(null)}
      >
        {confirming === "pause"
          ? "Its slots do not fire until it is resumed; jobs it already enqueued still run."
          : confirming === "resume"
            ? "It fires again from its next slot; the slots of the pause are not caught up."
            : "One run is enqueued now, outside any slot (paused or not)."}
      </Confirm>
    </article>
  )
}

export function Schedules() {
  const { data, error, reload } = usePolled(async () => {
    const all: Array<Schedule> = []
    let cursor: string | undefined
    for (let page = 0; page < maxPages; page++) {
      const result = ok(
        await api.GET("/schedules", { params: { query: cursor === undefined ? {} : { cursor } } })
      )
      all.push(...result.schedules)
      if (result.nextCursor === null) return { schedules: all, more: false }
      cursor = result.nextCursor
    }
    return { schedules: all, more: true }
  }, [])
  return (
    <section aria-labelledby="schedules-title">
      <h1 id="schedules-title">Schedules</h1>
      {error && <Notice kind="error">{error}</Notice>}
      {data === undefined ? (
        !error && <p>Loading…</p>
      ) : data.schedules.length === 0 ? (
        <p>No schedule yet: define one with POST /schedules, or in code (docs/schedules.md).</p>
      ) : (
        <>
          {data.schedules.map((schedule) => (
            <ScheduleCard key={schedule.name} schedule={schedule} onChanged={reload} />
          ))}
          {data.more && <Notice kind="info">Only the first {maxPages * 500} schedules are shown.</Notice>}
        </>
      )}
    </section>
  )
}
