/**
 * A TCP proxy in front of the test database that a test can cut: every connection through it is closed
 * and new ones are refused, as when a worker loses its network path to the database.
 */

import { afterAll } from "bun:test"
import { connect, createServer, type Socket } from "node:net"

export const tcpProxy = async (target: { readonly host: string; readonly port: number }) => {
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on("close", () => sockets.delete(s))
      s.on("error", () => s.destroy())
    }
    client.pipe(upstream)
    upstream.pipe(client)
    client.on("close", () => upstream.destroy())
    upstream.on("close", () => client.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as { port: number }).port
  const cut = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve())
      for (const s of sockets) s.destroy()
    })
  afterAll(() => {
    if (server.listening) return cut()
  })
  return { port, cut }
}

/** `url` with its host and port replaced by the proxy's. */
export const throughProxy = (url: string, port: number) => {
  const parsed = new URL(url)
  parsed.hostname = "127.0.0.1"
  parsed.port = String(port)
  return parsed.toString()
}
