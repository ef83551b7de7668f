/** Pieces every page uses: a confirmation dialog, notices, status badges, durations and times. */
import type { ComponentChildren } from "preact"
import { useEffect, useRef } from "preact/hooks"

export function Confirm(props: {
  readonly open: boolean
  readonly title: string
  readonly children?: ComponentChildren
  readonly confirmLabel: string
  readonly onConfirm: () => void
  readonly onCancel: () => void
}) {
  const dialog = useRef<HTMLDialogElement>(null)
  useEffect(() => {
    const element = dialog.current
    if (element === null) return
    if (props.open && !element.open) element.showModal()
    if (!props.open && element.open) element.close()
  }, [props.open])
  return (
    <dialog ref={dialog} aria-labelledby="confirm-title" onCancel={props.onCancel} onClose={props.onCancel}>
      <h2 id="confirm-title">{props.title}</h2>
      <div>{props.children}</div>
      <div class="actions">
        <button type="button" onClick={props.onCancel}>
          Cancel
        </button>
        <button type="button" class="danger" onClick={props.onConfirm}>
          {props.confirmLabel}
        </button>
      </div>
    </dialog>
  )
}

export function Notice(props: { readonly kind: "error" | "info"; readonly children: ComponentChildren }) {
  return (
    <p class={`notice ${props.kind}`} role={props.kind === "error" ? "alert" : "status"}>
      {props.children}
    </p>
  )
}

export function StatusBadge({ status }: { readonly status: string }) {
  return <span class={`badge s-${status}`}>{status.replace("_", " ")}</span>
}

export const duration = (ms: number | null | undefined): string => {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "–"
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`
  return `${Math.floor(ms / 3_600_000)} h ${Math.round((ms % 3_600_000) / 60_000)} min`
}

export const time = (iso: string | null | undefined): string =>
  iso === null || iso === undefined ? "–" : new Date(iso).toLocaleString(undefined, { hour12: false })

export const between = (from: string | null | undefined, to: string | null | undefined): number | null =>
  from === null || from === undefined || to === null || to === undefined
    ? null
    : new Date(to).getTime() - new Date(from).getTime()
