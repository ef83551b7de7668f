/**
 * A `GET /events` client for the benchmarks: opens the stream (no filter: every event), waits for its
 * `: open` comment, and counts events (and resets) until stopped. It reads as a plain client would, counting
 * `event:` lines without parsing the data.
 */
export const follow = async (baseUrl: string) => {
  const controller = new AbortController()
  const response = await fetch(`${baseUrl}/events`, { signal: controller.signal })
  if (response.status !== 200) throw new Error(`GET /events answered ${response.status}`)
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  let events = 0
  let resets = 0
  let open = false
  let tail = ""
  let resolveOpen: () => void = () => {}
  const opened = new Promise<void>((resolve) => {
    resolveOpen = resolve
  })
  const reading = (async () => {
    try {
      for (;;) {
        const chunk = await reader.read()
        if (chunk.done) return
        const text = tail + decoder.decode(chunk.value, { stream: true })
        const cut = text.lastIndexOf("\n\n")
        tail = cut < 0 ? text : text.slice(cut + 2)
        const complete = cut < 0 ? "" : text.slice(0, cut)
        if (!open && complete.includes(": open")) {
          open = true
          resolveOpen()
        }
        for (let at = complete.indexOf("event: "); at >= 0; at = complete.indexOf("event: ", at + 7)) {
          if (complete.startsWith("event: reset", at)) resets++
          else events++
        }
      }
    } catch {
      // aborted
    }
  })()
  await opened
  return {
    /** Events received so far. */
    received: () => events,
    stop: async () => {
      controller.abort()
      await reading
      return { events, resets }
    }
  }
}
