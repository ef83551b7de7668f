/** Queues: counts, pause (with a reason) and resume, concurrency and rate limits. */
import { useState } from "preact/hooks"
import { api, describeProblem, type QueueInfo } from "../api.ts"
import { Confirm, duration, Notice, time } from "../components.tsx"
import { ok, usePolled } from "../hooks.ts"
import { href } from "../router.ts"

function QueueRow({ queue, onChanged }: { readonly queue: QueueInfo; readonly onChanged: () => void }) {
  const [reason, setReason] = useState("")
  const [confirming, setConfirming] = useState<"pause" | "resume" | null>(null)
  const [message, setMessage] = useState<{ kind: "error" | "info"; text: string } | null>(null)
  const [concurrency, setConcurrency] = useState(queue.concurrencyLimit?.toString() ?? "")
  const [rateMax, setRateMax] = useState(queue.rateLimit?.max.toString() ?? "")
  const [ratePer, setRatePer] = useState(queue.rateLimit?.per.toString() ?? "")
  const id = `q-${queue.name.replace(/[^A-Za-z0-9_-]/g, "_")}`

  const act = async () => {
    const action = confirming
    setConfirming(null)
    const result =
      action === "pause"
        ? await api.POST("/queues/{name}/pause", {
            params: { path: { name: queue.name } },
            body: reason.trim() === "" ? null : { reason: reason.trim(), by: "dashboard" }
          })
        : await api.POST("/queues/{name}/resume", { params: { path: { name: queue.name } } })
    if (result.error !== undefined)
      setMessage({ kind: "error", text: describeProblem(result.error, result.response.status) })
    else setMessage({ kind: "info", text: result.data.message })
    onChanged()
  }

  const saveLimits = async (event: Event) => {
    event.preventDefault()
    const number = (text: string) => (text.trim() === "" ? null : Number(text))
    const max = number(rateMax)
    const per = number(ratePer)
    const result = await api.PATCH("/queues/{name}", {
      params: { path: { name: queue.name } },
      body: {
        concurrencyLimit: number(concurrency),
        rateLimit: max === null && per === null ? null : { max: max ?? 0, per: per ?? 0 }
      }
    })
    if (result.error !== undefined) {
      const problem = result.error as {
        errors?: ReadonlyArray<{ path: ReadonlyArray<unknown>; message: string }>
      }
      const issues = (problem.errors ?? [])
        .map((e) => `${e.path.slice(1).join(".")}: ${e.message}`)
        .join("; ")
      setMessage({
        kind: "error",
        text: `${describeProblem(result.error, result.response.status)} ${issues}`
      })
    } else setMessage({ kind: "info", text: "Limits saved" })
    onChanged()
  }

  return (
    <article class={`card queue${queue.paused ? " paused" : ""}`} aria-labelledby={`${id}-name`}>
      <header>
        <h2 id={`${id}-name`}>
          <a href={href("/jobs", { queue: queue.name })}>{queue.name}</a>
          {queue.paused && <span class="badge s-paused">paused</span>}
        </h2>
        <p class="counts">
          {queue.counts.queued} queued · {queue.counts.retrying} retrying · {queue.counts.running} running ·{" "}
          {queue.counts.blocked} blocked · oldest ready{" "}
          {duration(
            typeof queue.oldestReadyAgeSeconds === "number" ? queue.oldestReadyAgeSeconds * 1000 : null
          )}
        </p>
      </header>
      {queue.pause !== null && (
        <p class="muted">
          Paused {time(queue.pause.at)}
          {queue.pause.by !== null && ` by ${queue.pause.by}`}
          {queue.pause.reason !== null && `: ${queue.pause.reason}`}
        </p>
      )}
      <div class="row">
        {queue.paused ? (
          <button type="button" onClick={() => setConfirming("resume")}>
            Resume {queue.name}
          </button>
        ) : (
          <>
            <label>
              Reason{" "}
              <input value={reason} onInput={(e) => setReason(e.currentTarget.value)} maxLength={500} />
            </label>
            <button type="button" onClick={() => setConfirming("pause")}>
              Pause {queue.name}
            </button>
          </>
        )}
      </div>
      <form class="row" onSubmit={saveLimits} aria-label={`Limits of ${queue.name}`}>
        <label>
          Concurrency limit{" "}
          <input
            inputMode="numeric"
            size={6}
            value={concurrency}
            onInput={(e) => setConcurrency(e.currentTarget.value)}
          />
        </label>
        <label>
          Rate: max{" "}
          <input
            inputMode="numeric"
            size={6}
            value={rateMax}
            onInput={(e) => setRateMax(e.currentTarget.value)}
          />
        </label>
        <label>
          per ms{" "}
          <input
            inputMode="numeric"
            size={8}
            value={ratePer}
            onInput={(e) => setRatePer(e.currentTarget.value)}
          />
        </label>
        <button type="submit">Save limits</button>
      </form>
      {message && <Notice kind={message.kind}>{message.text}</Notice>}
      <Confirm
        open={confirming !== null}
        title={`${confirming === "pause" ? "Pause" : "Resume"} queue ${queue.name}?`}
        confirmLabel={confirming === "pause" ? "Pause" : "Resume"}
        onConfirm={act}
        onCancel={() => setConfirming(null)}
      >
        {confirming === "pause"
          ? "No worker will claim its jobs until it is resumed; running jobs finish."
          : "Idle workers claim its jobs at once."}
      </Confirm>
    </article>
  )
}

export function Queues() {
  const { data, error, reload } = usePolled(
    async () => ok(await api.GET("/queues", { params: { query: {} } })),
    []
  )
  return (
    <section aria-labelledby="queues-title">
      <h1 id="queues-title">Queues</h1>
      {error && <Notice kind="error">{error}</Notice>}
      {data === undefined ? (
        !error && <p>Loading…</p>
      ) : data.queues.length === 0 ? (
        <p>No queue yet: a queue exists once a job was enqueued to it.</p>
      ) : (
        data.queues.map((queue) => <QueueRow key={queue.name} queue={queue} onChanged={reload} />)
      )}
    </section>
  )
}
