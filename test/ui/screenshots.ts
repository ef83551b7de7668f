/**
 * `npm run screenshots` (with TEST_DATABASE_URL set, as for the tests): starts the service on a fresh
 * database, gives it a little of everything (finished, failed, waiting jobs, a paused queue, schedules, a
 * flow), and saves
 * every dashboard page at 1280x800 in the light and the dark scheme as docs/dashboard/<page>-<scheme>.png.
 */
import { mkdirSync } from "node:fs"
import { join } from "node:path"
import { fullToken, startRig } from "./browser.ts"

const cleanups: Array<() => Promise<void>> = []
const rig = await startRig("screenshots", (fn) => cleanups.push(fn))
const out = join(import.meta.dir, "../../docs/dashboard")
mkdirSync(out, { recursive: true })

const post = async (path: string, body?: unknown) => {
  const response = await rig.request(path, {
    method: "POST",
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`)
  return response.json() as Promise<{ id: string; jobs?: Array<{ id: string }> }>
}

try {
  const jobs = [
    ...Array.from({ length: 40 }, (_, i) => ({
      kind: "sleep",
      queue: "emails",
      payload: { ms: 20 + (i % 7) * 30 }
    })),
    ...Array.from({ length: 25 }, (_, i) => ({
      kind: "cpu_hash",
      queue: "reports",
      payload: { rounds: 2000 + i * 100, seed: `r${i}` }
    })),
    ...Array.from({ length: 6 }, () => ({ kind: "flaky", queue: "webhooks", payload: { failTimes: 1 } })),
    ...Array.from({ length: 3 }, () => ({
      kind: "gate",
      queue: "webhooks",
      payload: { path: "/nonexistent" },
      maxAttempts: 2
    }))
  ]
  await post("/jobs/batch", { jobs })
  await post("/queues/imports/pause", { reason: "supplier feed is down", by: "ops" })
  await post("/jobs/batch", {
    jobs: Array.from({ length: 12 }, (_, i) => ({ kind: "noop", queue: "imports", payload: {}, priority: i }))
  })
  await post("/schedules", {
    name: "nightly-report",
    cron: "30 2 * * *",
    timeZone: "Europe/Berlin",
    kind: "cpu_hash",
    queue: "reports",
    payload: { rounds: 1000, seed: "nightly" },
    overlap: "skip"
  })
  await post("/schedules", { name: "hourly-cleanup", cron: "@hourly", kind: "noop", queue: "maintenance" })
  await post("/schedules", { name: "supplier-sync", cron: "*/15 * * * *", kind: "noop", queue: "imports" })
  await post("/schedules/supplier-sync/pause", { reason: "supplier feed is down", by: "ops" })
  await post("/schedules/nightly-report/trigger")
  const flow = await post("/flows", {
    onFailure: "wait",
    jobs: [
      { name: "fetch", kind: "sleep", queue: "etl", payload: { ms: 30 } },
      { name: "transform-a", kind: "sleep", queue: "etl", payload: { ms: 40 }, dependsOn: ["fetch"] },
      {
        name: "transform-b",
        kind: "gate",
        queue: "etl",
        payload: { path: "/nonexistent" },
        maxAttempts: 1,
        dependsOn: ["fetch"]
      },
      { name: "load", kind: "noop", queue: "etl", payload: {}, dependsOn: ["transform-a", "transform-b"] },
      { name: "notify", kind: "noop", queue: "etl", payload: {}, dependsOn: ["load"] }
    ]
  })
  const failed = await post("/jobs", {
    kind: "gate",
    queue: "webhooks",
    payload: { path: "/nonexistent" },
    maxAttempts: 2
  })
  const deadline = Date.now() + 30_000
  for (;;) {
    const job = (await (await rig.request(`/jobs/${failed.id}`)).json()) as { status: string }
    if (job.status === "failed_permanent" || Date.now() > deadline) break
    await Bun.sleep(200)
  }
  // the overview's finished counts are the maintainer's recount (every 30 s): wait for one that saw them
  for (const until = Date.now() + 60_000; Date.now() < until; ) {
    const stats = (await (await rig.request("/stats")).json()) as {
      queues: Array<{ queue: string; counts: { succeeded: number | null } }>
    }
    if ((stats.queues.find((q) => q.queue === "emails")?.counts.succeeded ?? 0) >= 40) break
    await Bun.sleep(1000)
  }
  const pages = [
    ["overview", "#/"],
    ["jobs", "#/jobs?queue=webhooks"],
    ["job", `#/jobs/${failed.id}`],
    ["queues", "#/queues"],
    ["workers", "#/workers"],
    ["schedules", "#/schedules"],
    ["flow", `#/flows/${flow.id}`],
    ["enqueue", "#/enqueue"]
  ] as const
  for (const scheme of ["light", "dark"] as const) {
    const context = await rig.context(fullToken, { colorScheme: scheme })
    await context.addInitScript(() => localStorage.setItem("jobq.poll", "0"))
    const page = await context.newPage()
    for (const [name, fragment] of pages) {
      await page.goto(`${rig.base}/ui/${fragment}`)
      await page.getByRole("heading", { level: 1 }).first().waitFor()
      // a new fragment is no new document: wait for the page's data, not for the network
      await page.waitForFunction(() => !document.body.textContent?.includes("Loading…"))
      await page.waitForLoadState("networkidle")
      await page.screenshot({ path: join(out, `${name}-${scheme}.png`) })
      console.log(`docs/dashboard/${name}-${scheme}.png`)
    }
    await context.close()
  }
} finally {
  for (const fn of cleanups.reverse()) await fn()
}
