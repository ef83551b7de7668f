/** Reads a Server-Sent Events response message by message, each wait bounded by a deadline. */

export interface SseMessage {
  readonly id?: string
  readonly event?: string
  readonly data?: string
  /** Comment lines (`: ping`), without the colon and space. */
  readonly comments: ReadonlyArray<string>
}

export const parseMessage = (block: string): SseMessage => {
  const fields: Record<string, string> = {}
  const comments: Array<string> = []
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) comments.push(line.slice(1).trim())
    else {
      const at = line.indexOf(":")
      const field = at < 0 ? line : line.slice(0, at)
      const value = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "")
      fields[field] = fields[field] === undefined ? value : `${fields[field]}\n${value}`
    }
  }
  return { ...fields, comments }
}

export const sseReader = (response: Response) => {
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  let buffer = ""
  let ended = false
  const pending: Array<SseMessage> = []

  /** The next message, or undefined when the stream ended; fails after `timeoutMs`. */
  const next = async (timeoutMs = 10_000): Promise<SseMessage | undefined> => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (pending.length > 0) return pending.shift()
      if (ended) return undefined
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no event-stream message within ${timeoutMs} ms`)
      let timer: ReturnType<typeof setTimeout> | undefined
      const chunk = await Promise.race([
        reader.read(),
        new Promise<"timeout">((resolve) => {
          timer = setTimeout(() => resolve("timeout"), left)
        })
      ])
      clearTimeout(timer)
      if (chunk === "timeout") throw new Error(`no event-stream message within ${timeoutMs} ms`)
      if (chunk.done) {
        ended = true
        continue
      }
      buffer += decoder.decode(chunk.value, { stream: true })
      for (let at = buffer.indexOf("\n\n"); at >= 0; at = buffer.indexOf("\n\n")) {
        pending.push(parseMessage(buffer.slice(0, at)))
        buffer = buffer.slice(at + 2)
      }
    }
  }

  /** The next message that is an event (skipping comments); undefined at the end. */
  const nextEvent = async (timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const message = await next(Math.max(1, deadline - Date.now()))
      if (message === undefined || message.event !== undefined) return message
    }
  }

  /** Events until `count` have arrived (fails at the deadline). */
  const events = async (count: number, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs
    const seen: Array<SseMessage> = []
    while (seen.length < count) {
      const message = await nextEvent(Math.max(1, deadline - Date.now())).catch((error) => {
        throw new Error(
          `${String(error)}; ${seen.length} of ${count} events arrived: ${JSON.stringify(seen)}`
        )
      })
      if (message === undefined) throw new Error(`the stream ended after ${seen.length} of ${count} events`)
      seen.push(message)
    }
    return seen
  }

  return { next, nextEvent, events, cancel: () => reader.cancel() }
}

export const eventData = (message: SseMessage) => JSON.parse(message.data ?? "null") as any
