/** A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it), for a process the harness starts. */
export const freePort = () => {
  const probe = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() })
  const port = probe.port!
  probe.stop(true)
  return port
}
