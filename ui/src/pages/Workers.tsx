/** Live worker processes: host, pid, queues, concurrency, jobs held, last heartbeat. */
import { api } from "../api.ts"
import { Notice, time } from "../components.tsx"
import { ok, usePolled } from "../hooks.ts"

export function Workers() {
  const { data, error } = usePolled(async () => ok(await api.GET("/workers")), [])
  return (
    <section aria-labelledby="workers-title">
      <h1 id="workers-title">Workers</h1>
      {error && <Notice kind="error">{error}</Notice>}
      {data === undefined ? (
        !error && <p>Loading…</p>
      ) : (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Worker</th>
                <th scope="col">Host</th>
                <th scope="col">PID</th>
                <th scope="col">Queues</th>
                <th scope="col">Running / concurrency</th>
                <th scope="col">Started</th>
                <th scope="col">Last heartbeat</th>
              </tr>
            </thead>
            <tbody>
              {data.workers.length === 0 && (
                <tr>
                  <td colSpan={7}>No live worker.</td>
                </tr>
              )}
              {data.workers.map((w) => (
                <tr key={w.id}>
                  <td class="mono">{w.id}</td>
                  <td>{w.host}</td>
                  <td>{w.pid}</td>
                  <td>{w.queues === null ? "every queue" : w.queues.join(", ")}</td>
                  <td>
                    {w.running} / {w.concurrency}
                  </td>
                  <td>{time(w.startedAt)}</td>
                  <td>{time(w.lastHeartbeatAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  )
}
