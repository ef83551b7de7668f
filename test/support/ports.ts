/** A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it), for a process the test starts. */
export const freePort = () => {
  const probe = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() })
  const port = probe.port!
  probe.stop(true)
  return port
}

/** Polls `url` until it answers 2xx, failing after `timeoutMs`. */
export const waitUntilHealthy = async (url: string, timeoutMs = 60_000) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false
    )
    if (ok) return
    if (Date.now() > deadline) throw new Error(`${url} did not answer 2xx within ${timeoutMs} ms`)
    await Bun.sleep(200)
  }
}
