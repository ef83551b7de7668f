/** Per queue: counts by status, oldest ready job's age, paused first; throughput chart; wait/run percentiles. */
import { useEffect, useRef } from "preact/hooks"
import uPlot from "uplot"
import { api, type Stats } from "../api.ts"
import { duration, Notice } from "../components.tsx"
import { ok, usePolled } from "../hooks.ts"
import { href } from "../router.ts"

function Throughput({ stats }: { readonly stats: Stats }) {
  const box = useRef<HTMLDivElement>(null)
  const plot = useRef<uPlot | null>(null)
  const ink = useRef("")
  useEffect(() => {
    if (box.current === null) return
    // a canvas does not follow CSS: the axes take the text colour of the scheme in force, and the chart is
    // drawn anew when the scheme changed
    const color = getComputedStyle(box.current).color
    if (plot.current !== null && ink.current !== color) {
      plot.current.destroy()
      plot.current = null
    }
    ink.current = color
    // the last hour, minute by minute, minutes without finished jobs at 0
    const end = Math.floor(new Date(stats.computedAt).getTime() / 60_000) * 60
    const xs: Array<number> = []
    const succeeded: Array<number> = []
    const failed: Array<number> = []
    const byMinute = new Map(
      stats.throughput.map((m) => [Math.floor(new Date(m.minute).getTime() / 1000), m])
    )
    for (let t = end - 59 * 60; t <= end; t += 60) {
      xs.push(t)
      succeeded.push(byMinute.get(t)?.succeeded ?? 0)
      failed.push(byMinute.get(t)?.failed ?? 0)
    }
    const data: uPlot.AlignedData = [xs, succeeded, failed]
    if (plot.current === null) {
      plot.current = new uPlot(
        {
          width: Math.max(300, box.current.clientWidth),
          height: 200,
          series: [
            {},
            { label: "succeeded / min", stroke: "#2f9e44", width: 2 },
            { label: "failed / min", stroke: "#e03131", width: 2 }
          ],
          axes: [
            {
              stroke: color,
              grid: { stroke: "rgba(128,128,128,0.25)" },
              ticks: { stroke: "rgba(128,128,128,0.25)" }
            },
            {
              stroke: color,
              grid: { stroke: "rgba(128,128,128,0.25)" },
              ticks: { stroke: "rgba(128,128,128,0.25)" }
            }
          ]
        },
        data,
        box.current
      )
    } else plot.current.setData(data)
  }, [stats])
  useEffect(
    () => () => {
      plot.current?.destroy()
      plot.current = null
    },
    []
  )
  return (
    <div ref={box} class="chart" role="img" aria-label="Jobs succeeded and failed per minute, last hour" />
  )
}

export function Overview() {
  const { data, error } = usePolled(async () => ok(await api.GET("/stats")), [])
  if (data === undefined) return error ? <Notice kind="error">{error}</Notice> : <p>Loading…</p>
  const queues = [...data.queues].sort((a, b) => Number(b.paused) - Number(a.paused))
  return (
    <section aria-labelledby="overview-title">
      <h1 id="overview-title">Overview</h1>
      {error && <Notice kind="error">{error}</Notice>}
      <p class="muted">
        Figures of {new Date(data.computedAt).toLocaleTimeString(undefined, { hour12: false })}, shared by
        every viewer. Finished counts are the workers' last recount (every 30 s or so); – until the first.
      </p>
      <h2>Queues</h2>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Queue</th>
              <th scope="col">Queued</th>
              <th scope="col">Retrying</th>
              <th scope="col">Running</th>
              <th scope="col">Blocked</th>
              <th scope="col">Succeeded</th>
              <th scope="col">Failed</th>
              <th scope="col">Cancelled</th>
              <th scope="col">Oldest ready</th>
            </tr>
          </thead>
          <tbody>
            {queues.length === 0 && (
              <tr>
                <td colSpan={9}>No jobs yet.</td>
              </tr>
            )}
            {queues.map((q) => (
              <tr key={q.queue} class={q.paused ? "paused" : ""}>
                <th scope="row">
                  <a href={href("/jobs", { queue: q.queue })}>{q.queue}</a>
                  {q.paused && <span class="badge s-paused">paused</span>}
                </th>
                <td>{q.counts.queued}</td>
                <td>{q.counts.retrying}</td>
                <td>{q.counts.running}</td>
                <td>{q.counts.blocked}</td>
                <td>{q.counts.succeeded ?? "–"}</td>
                <td>{q.counts.failed_permanent ?? "–"}</td>
                <td>{q.counts.cancelled ?? "–"}</td>
                <td>{duration(q.oldestReadyAgeMs)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2>Throughput, last hour</h2>
      <Throughput stats={data} />
      <h2>Wait and run times, last hour</h2>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Queue</th>
              <th scope="col">Kind</th>
              <th scope="col">Jobs</th>
              <th scope="col">Wait p50</th>
              <th scope="col">Wait p95</th>
              <th scope="col">Run p50</th>
              <th scope="col">Run p95</th>
            </tr>
          </thead>
          <tbody>
            {data.latency.length === 0 && (
              <tr>
                <td colSpan={7}>No job finished in the last hour.</td>
              </tr>
            )}
            {data.latency.map((l) => (
              <tr key={`${l.queue}/${l.kind}`}>
                <td>{l.queue}</td>
                <td>{l.kind}</td>
                <td>{l.jobs}</td>
                <td>{duration(l.waitP50Ms)}</td>
                <td>{duration(l.waitP95Ms)}</td>
                <td>{duration(l.runP50Ms)}</td>
                <td>{duration(l.runP95Ms)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  )
}
