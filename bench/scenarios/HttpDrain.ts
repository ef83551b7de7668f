/**
 * Drain throughput through the HTTP API alone, for a service whose database the harness cannot reach (the
 * embedded one lives inside the process): no-op jobs are enqueued by `POST /jobs/batch` with one shared
 * `runAt` a little in the future, so none is ready until the whole backlog is in; the drain is then timed
 * from the first claim (the earliest `startedAt`) to the last completion (the latest `finishedAt`), read
 * back through `GET /jobs` once every job has succeeded. The service's own clock stamps both ends.
 *
 * A first batch, ready at once, warms the worker up and sizes the gate: `runAt` is set at twice the time
 * that batch took to enqueue, per batch, plus a margin. A backlog not fully in by then fails the run.
 */
const batchSize = 1000
const pageSize = 500

interface JobView {
  readonly status: string
  readonly runAt: string
  readonly startedAt: string | null
  readonly finishedAt: string | null
}

export interface HttpDrainRun {
  readonly jobsPerSecond: number
  readonly seconds: number
  /** `POST /jobs/batch` while the worker was idle (every job scheduled ahead). */
  readonly enqueuePerSecond: number
}

const post = async (baseUrl: string, runAt: Date | undefined) => {
  const job = runAt === undefined ? { kind: "noop", payload: {} } : { kind: "noop", payload: {}, runAt }
  const response = await fetch(`${baseUrl}/jobs/batch`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jobs: Array.from({ length: batchSize }, () => job) })
  })
  await response.arrayBuffer()
  if (response.status !== 200) throw new Error(`POST /jobs/batch answered ${response.status}`)
}

const page = async (
  baseUrl: string,
  query: string
): Promise<{ jobs: Array<JobView>; nextCursor: string | null }> => {
  const response = await fetch(`${baseUrl}/jobs?${query}`)
  if (!response.ok) throw new Error(`GET /jobs?${query} answered ${response.status}`)
  return (await response.json()) as { jobs: Array<JobView>; nextCursor: string | null }
}

/** True once no job is waiting, buffered or running (a no-op never fails, so none is retrying either). */
const drained = async (baseUrl: string) => {
  for (const status of ["queued", "running", "retrying"]) {
    if ((await page(baseUrl, `status=${status}&limit=1`)).jobs.length > 0) return false
  }
  return true
}

const waitDrained = async (baseUrl: string, timeoutMs: number, pollMs: number) => {
  const deadline = Date.now() + timeoutMs
  while (!(await drained(baseUrl))) {
    if (Date.now() > deadline) throw new Error(`backlog not drained within ${timeoutMs} ms`)
    await Bun.sleep(pollMs)
  }
}

/** Every succeeded job, page by page (bounded by the number of jobs enqueued). */
const succeeded = async (baseUrl: string, expected: number) => {
  const jobs: Array<JobView> = []
  let cursor: string | null = null
  for (let pages = 0; pages <= Math.ceil(expected / pageSize); pages++) {
    const result = await page(
      baseUrl,
      `status=succeeded&limit=${pageSize}${cursor === null ? "" : `&cursor=${cursor}`}`
    )
    jobs.push(...result.jobs)
    cursor = result.nextCursor
    if (cursor === null) return jobs
  }
  throw new Error("more succeeded jobs than were enqueued")
}

export const run = async (
  baseUrl: string,
  options: { readonly backlog: number; readonly timeoutMs?: number }
): Promise<HttpDrainRun> => {
  const batches = Math.ceil(options.backlog / batchSize)
  const timeoutMs = options.timeoutMs ?? 120_000
  const warmStarted = performance.now()
  await post(baseUrl, undefined)
  const batchMs = performance.now() - warmStarted
  await waitDrained(baseUrl, timeoutMs, 50)

  const runAt = new Date(Date.now() + batches * batchMs * 2 + 500)
  const enqueueStarted = performance.now()
  for (let i = 0; i < batches; i++) await post(baseUrl, runAt)
  const enqueueSeconds = (performance.now() - enqueueStarted) / 1000
  if (Date.now() >= runAt.getTime()) {
    throw new Error(`the backlog took ${enqueueSeconds.toFixed(2)} s to enqueue, past its runAt`)
  }
  // the listing scans the table and, on the embedded database, holds its only connection, so its polls
  // slow the drain they watch: the first one comes a second after runAt (a 10,000-job drain takes well
  // under that on either database), then every 250 ms
  await Bun.sleep(runAt.getTime() - Date.now() + 1000)
  await waitDrained(baseUrl, timeoutMs, 250)

  const measured = (await succeeded(baseUrl, (batches + 1) * batchSize)).filter(
    (job) => Date.parse(job.runAt) === runAt.getTime()
  )
  if (measured.length !== batches * batchSize) {
    throw new Error(`${measured.length} of ${batches * batchSize} gated jobs succeeded`)
  }
  const first = Math.min(...measured.map((job) => Date.parse(job.startedAt!)))
  const last = Math.max(...measured.map((job) => Date.parse(job.finishedAt!)))
  const seconds = (last - first) / 1000
  return {
    jobsPerSecond: measured.length / seconds,
    seconds,
    enqueuePerSecond: (batches * batchSize) / enqueueSeconds
  }
}
