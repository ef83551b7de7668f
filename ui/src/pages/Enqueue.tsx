/**
 * Enqueue: a form per kind, generated from the kind's payload schema in the OpenAPI document the API
 * serves (`/api-docs/openapi.json`). Flat payloads get one field per property; anything else a JSON
 * editor. The API checks the body; its 422 issues are shown beside the fields they name.
 */
import { useState } from "preact/hooks"
import { api, apiRoot, describeProblem, token } from "../api.ts"
import { Notice } from "../components.tsx"
import { usePolled } from "../hooks.ts"
import { href } from "../router.ts"

interface JsonSchema {
  readonly type?: string
  readonly title?: string
  readonly description?: string
  readonly properties?: Record<string, JsonSchema>
  readonly required?: ReadonlyArray<string>
  readonly examples?: ReadonlyArray<unknown>
  readonly enum?: ReadonlyArray<unknown>
  readonly minimum?: number
  readonly maximum?: number
  readonly $ref?: string
  readonly oneOf?: ReadonlyArray<JsonSchema>
}

interface KindForm {
  readonly name: string
  readonly description: string | undefined
  readonly payload: JsonSchema
  /** Every property a scalar: one field each. */
  readonly flat: boolean
}

const scalar = (schema: JsonSchema) => ["integer", "number", "string", "boolean"].includes(schema.type ?? "")

async function loadKinds(): Promise<ReadonlyArray<KindForm>> {
  // with API_PUBLIC_DOCS=false the document needs the token too
  const value = token.get()
  const response = await fetch(`${apiRoot}/api-docs/openapi.json`, {
    headers: value === null ? {} : { authorization: `Bearer ${value}` }
  })
  if (!response.ok) throw new Error(`the API's document could not be read (${response.status})`)
  const document = (await response.json()) as { components: { schemas: Record<string, JsonSchema> } }
  const schemas = document.components.schemas
  const resolve = (schema: JsonSchema): JsonSchema =>
    schema.$ref === undefined ? schema : resolve(schemas[schema.$ref.split("/").pop()!] ?? {})
  return (schemas.NewJob?.oneOf ?? []).map((ref) => {
    const job = resolve(ref)
    const payload = resolve(job.properties?.payload ?? {})
    const name = String(job.properties?.kind?.enum?.[0] ?? job.title ?? "?")
    const properties = Object.values(payload.properties ?? {}).map(resolve)
    return {
      name,
      description: job.description,
      payload,
      flat: payload.type === "object" && properties.every(scalar)
    }
  })
}

type Issues = Record<string, string>

function KindFields({ kind, issues }: { readonly kind: KindForm; readonly issues: Issues }) {
  if (!kind.flat) {
    const example = kind.payload.examples?.[0] ?? {}
    return (
      <label class="block">
        Payload (JSON)
        <textarea
          name="payload"
          rows={6}
          defaultValue={JSON.stringify(example, null, 2)}
          aria-describedby="issue-payload"
        />
        {issues.payload && (
          <span id="issue-payload" class="issue">
            {issues.payload}
          </span>
        )}
      </label>
    )
  }
  const example = (kind.payload.examples?.[0] ?? {}) as Record<string, unknown>
  const entries = Object.entries(kind.payload.properties ?? {})
  if (entries.length === 0) return <p class="muted">This kind takes an empty payload.</p>
  return (
    <>
      {entries.map(([field, schema]) => {
        const id = `field-${field}`
        const issue = issues[`payload.${field}`]
        return (
          // biome-ignore lint/a11y/noLabelWithoutControl: the control is one of the two inputs below
          <label key={field} class="block">
            {field}
            {kind.payload.required?.includes(field) ? " (required)" : ""}
            {schema.type === "boolean" ? (
              <input id={id} name={`p.${field}`} type="checkbox" defaultChecked={example[field] === true} />
            ) : (
              <input
                id={id}
                name={`p.${field}`}
                inputMode={schema.type === "string" ? "text" : "numeric"}
                defaultValue={example[field] === undefined ? "" : String(example[field])}
                aria-invalid={issue !== undefined}
                aria-describedby={issue === undefined ? undefined : `${id}-issue`}
              />
            )}
            {schema.description && <span class="muted">{schema.description}</span>}
            {issue && (
              <span id={`${id}-issue`} class="issue">
                {issue}
              </span>
            )}
          </label>
        )
      })}
    </>
  )
}

export function Enqueue() {
  const { data: kinds, error } = usePolled(loadKinds, [])
  const [chosen, setChosen] = useState<string | null>(null)
  const [issues, setIssues] = useState<Issues>({})
  const [message, setMessage] = useState<{ kind: "error" | "info"; text: string; id?: string } | null>(null)
  if (kinds === undefined) return error ? <Notice kind="error">{error}</Notice> : <p>Loading…</p>
  const kind = kinds.find((k) => k.name === chosen) ?? kinds[0]
  if (kind === undefined) return <p>The API declares no job kind.</p>

  const submit = async (event: Event) => {
    event.preventDefault()
    const form = new FormData(event.currentTarget as HTMLFormElement)
    const localIssues: Issues = {}
    let payload: unknown = {}
    if (kind.flat) {
      const values: Record<string, unknown> = {}
      for (const [field, schema] of Object.entries(kind.payload.properties ?? {})) {
        const raw = form.get(`p.${field}`)
        if (schema.type === "boolean") values[field] = raw !== null
        else if (raw !== null && String(raw) !== "")
          values[field] = schema.type === "string" ? String(raw) : Number(raw)
      }
      payload = values
    } else {
      try {
        payload = JSON.parse(String(form.get("payload") ?? "{}"))
      } catch {
        localIssues.payload = "not valid JSON"
      }
    }
    const options: Record<string, unknown> = {}
    const queue = String(form.get("queue") ?? "").trim()
    if (queue !== "") options.queue = queue
    for (const key of ["priority", "maxAttempts", "delayMs"] as const) {
      const value = String(form.get(key) ?? "").trim()
      if (value !== "") options[key] = Number(value)
    }
    setIssues(localIssues)
    if (Object.keys(localIssues).length > 0) return
    const result = await api.POST("/jobs", {
      body: { kind: kind.name, payload, ...options } as never,
      params: { query: {}, header: {} }
    })
    if (result.error !== undefined) {
      const problem = result.error as {
        errors?: ReadonlyArray<{ path: ReadonlyArray<string | number>; message: string }>
      }
      const next: Issues = {}
      for (const issue of problem.errors ?? []) {
        const key = issue.path.slice(1).join(".")
        next[key] = next[key] === undefined ? issue.message : `${next[key]}; ${issue.message}`
      }
      setIssues(next)
      setMessage({ kind: "error", text: describeProblem(result.error, result.response.status) })
      return
    }
    setMessage({ kind: "info", text: `Enqueued job ${result.data.id}`, id: result.data.id })
  }

  return (
    <section aria-labelledby="enqueue-title">
      <h1 id="enqueue-title">Enqueue a job</h1>
      <form class="enqueue" onSubmit={submit} key={kind.name}>
        <label class="block">
          Kind{" "}
          <select value={kind.name} onChange={(e) => setChosen(e.currentTarget.value)} name="kind">
            {kinds.map((k) => (
              <option key={k.name} value={k.name}>
                {k.name}
              </option>
            ))}
          </select>
        </label>
        {kind.description && <p class="muted">{kind.description}</p>}
        <fieldset>
          <legend>Payload</legend>
          <KindFields kind={kind} issues={issues} />
        </fieldset>
        <fieldset>
          <legend>Options</legend>
          {(
            [
              ["queue", "Queue"],
              ["priority", "Priority"],
              ["maxAttempts", "Max attempts"],
              ["delayMs", "Delay (ms)"]
            ] as const
          ).map(([key, label]) => (
            <label key={key} class="block">
              {label} <input name={key} aria-invalid={issues[key] !== undefined} />
              {issues[key] && <span class="issue">{issues[key]}</span>}
            </label>
          ))}
        </fieldset>
        <button type="submit">Enqueue</button>
      </form>
      {message && (
        <Notice kind={message.kind}>
          {message.text}
          {message.id && (
            <>
              {" "}
              <a href={href(`/jobs/${message.id}`)}>Open it</a>
            </>
          )}
        </Notice>
      )}
    </section>
  )
}
