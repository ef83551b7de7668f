/**
 * A TCP proxy in front of the test database that a test can cut: every connection through it is closed
 * and new ones are refused, as when a worker loses its network path to the database. It can also swallow
 * the server's answers, then break the connections, as when a server is killed after a commit.
 */

import { afterAll } from "bun:test"
import { connect, createServer, type Socket } from "node:net"

export const tcpProxy = async (target: { readonly host: string; readonly port: number }) => {
  const sockets = new Set<Socket>()
  // while set, what the server sends is dropped: a request goes through, its answer never comes back
  let swallowing = false
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on("close", () => sockets.delete(s))
      s.on("error", () => s.destroy())
    }
    client.pipe(upstream)
    upstream.on("data", (chunk) => {
      if (!swallowing) client.write(chunk)
    })
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
  /** From now on, the server's answers on every connection are lost (until `reset`). */
  const swallow = () => {
    swallowing = true
  }
  /** Breaks every connection open now (as a killed server or a lost network would); new ones work. */
  const reset = () => {
    for (const s of sockets) s.destroy()
    swallowing = false
  }
  afterAll(() => {
    if (server.listening) return cut()
  })
  return { port, cut, swallow, reset }
}

/** `url` with its host and port replaced by the proxy's. */
export const throughProxy = (url: string, port: number) => {
  const parsed = new URL(url)
  parsed.hostname = "127.0.0.1"
  parsed.port = String(port)
  return parsed.toString()
}
