/**
 * The dashboard in a real Chromium against the real service (API + worker + Postgres): what an operator
 * does with it, an accessibility check of every page, keyboard use, the bundle's size and the first page's
 * time to interactive.
 */
import { describe, expect, it } from "bun:test"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { gzipSync } from "node:zlib"
import { axeViolations, eventually, fullToken, readToken, startRig, traceUrl } from "./browser.ts"

const rig = await startRig(import.meta.file)

interface JobBody {
  readonly id: string
  readonly status: string
}
const enqueue = async (body: Record<string, unknown>) => {
  const response = await rig.request("/jobs", { method: "POST", body: JSON.stringify(body) })
  expect(response.status).toBe(201)
  return (await response.json()) as JobBody
}
const getJob = async (id: string) => (await (await rig.request(`/jobs/${id}`)).json()) as JobBody
const untilStatus = (id: string, status: string) =>
  eventually(
    () => getJob(id),
    (job) => job.status === status
  )
const ui = (fragment = "") => `${rig.base}/ui/${fragment}`

describe("the dashboard", () => {
  it("loads its first page interactive in under 1 s; its JavaScript is under 300 KB gzipped and served gzipped", async () => {
    const gzipped = gzipSync(readFileSync(join(import.meta.dir, "../../ui/dist/app.js")), { level: 9 }).length
    expect(gzipped).toBeLessThan(300 * 1024)
    const served = await fetch(`${rig.base}/ui/app.js`, {
      headers: { "accept-encoding": "gzip" },
      decompress: false
    } as RequestInit)
    expect(served.headers.get("content-encoding")).toBe("gzip")
    const context = await rig.context(fullToken)
    const page = await context.newPage()
    await page.goto(ui(), { waitUntil: "commit" }) // warm: the first load also starts the browser's process
    await page.getByRole("heading", { name: "Overview" }).waitFor()
    const started = Date.now()
    await page.goto(ui())
    await page.getByRole("heading", { name: "Queues" }).waitFor() // data loaded and rendered
    await page.getByRole("link", { name: "Jobs" }).click()
    await page.getByRole("heading", { name: "Jobs" }).waitFor()
    const interactiveMs = Date.now() - started
    expect(interactiveMs).toBeLessThan(1000)
    console.log(
      `first page interactive in ${interactiveMs} ms; app.js ${Math.round(gzipped / 1024)} KB gzipped`
    )
    await context.close()
  })

  it("enqueues from the form and shows the job succeed", async () => {
    const context = await rig.context(fullToken)
    const page = await context.newPage()
    await page.goto(ui("#/enqueue"))
    await page.getByLabel("Kind").selectOption("sleep")
    await page.getByLabel(/^ms/).fill("not a number")
    await page.getByRole("button", { name: "Enqueue" }).click()
    // the API's 422, shown beside the field it names
    await page.getByRole("alert").filter({ hasText: "422" }).waitFor()
    await page.getByLabel(/^ms/).fill("20")
    await page.getByLabel("Queue", { exact: true }).fill("ui-form")
    await page.getByRole("button", { name: "Enqueue" }).click()
    await page.getByRole("link", { name: "Open it" }).click()
    await page.locator(".badge", { hasText: "succeeded" }).waitFor()
    await expect(page.getByText('"sleptMs": 20')).toBeDefined()
    await context.close()
  })

  it("retries a failed job from its page, and it then succeeds", async () => {
    const gate = join(rig.scratch, "gate-open")
    const job = await enqueue({ kind: "gate", payload: { path: gate }, maxAttempts: 1, queue: "ui-gate" })
    await untilStatus(job.id, "failed_permanent")
    const context = await rig.context(fullToken)
    const page = await context.newPage()
    await page.goto(ui(`#/jobs/${job.id}`))
    await page.getByText("gate closed").first().waitFor() // the attempt's error
    writeFileSync(gate, "")
    await page.getByRole("button", { name: "Retry" }).click()
    await page.getByRole("dialog").getByRole("button", { name: "Yes, retry" }).click()
    await page.locator("h1 .badge", { hasText: "succeeded" }).waitFor()
    expect((await getJob(job.id)).status).toBe("succeeded")
    await context.close()
  })

  it("shows each attempt's due, start and end with wait and run times, and the trace id linked", async () => {
    const job = await enqueue({ kind: "flaky", payload: { failTimes: 1 }, queue: "ui-attempts" })
    await untilStatus(job.id, "succeeded")
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736"
    const db = new Bun.SQL(rig.databaseUrl)
    await db`UPDATE jobs SET trace_context = ${{ traceparent: `00-${traceId}-00f067aa0ba902b7-01` }}::jsonb WHERE id = ${job.id}`
    await db.close()
    const context = await rig.context(fullToken)
    const page = await context.newPage()
    await page.goto(ui(`#/jobs/${job.id}`))
    const rows = page.getByRole("table", { name: "Attempts" }).locator("tbody tr")
    await rows.nth(1).waitFor()
    const cells = async (n: number) =>
      rows
        .nth(n)
        .locator("td")
        .evaluateAll((tds) => tds.map((td) => td.textContent ?? ""))
    const [first, second] = [await cells(0), await cells(1)]
    // attempt, due, started, ended, wait, run, outcome: every instant and duration known
    expect([first[0], first[6], second[0], second[6]]).toEqual(["1", "attempt 1 failed", "2", "succeeded"])
    for (const row of [first, second]) for (const cell of row.slice(1, 6)) expect(cell).not.toBe("–")
    await page.getByText("attempt 1 started").waitFor()
    await page.getByText("attempt 2 started").waitFor()
    const link = page.getByTestId("trace-id").getByRole("link", { name: traceId })
    expect(await link.getAttribute("href")).toBe(traceUrl.replace("{traceId}", traceId))
    await context.close()
  })

  it("live updates from the event stream: the job page and the list refresh on events, not on a timer", async () => {
    expect((await rig.request("/queues/ui-live/pause", { method: "POST" })).status).toBe(200)
    const job = await enqueue({ kind: "noop", payload: {}, queue: "ui-live" })
    const context = await rig.context(fullToken)
    const page = await context.newPage()
    const streams: Array<string> = []
    page.on("request", (request) => {
      const url = new URL(request.url())
      if (url.pathname === "/events") streams.push(url.search)
    })
    await page.goto(ui(`#/jobs/${job.id}`))
    await page.locator("h1 .badge", { hasText: "queued" }).waitFor()
    await page.getByLabel("Refresh").selectOption({ label: "live (events)" })
    await eventually(
      async () => streams,
      (s) => s.some((q) => q.includes(job.id)),
      5_000
    )
    // the stream is up: the page falls back to polling every 30 s, so a change seen within 5 s is the event's
    await Bun.sleep(300)
    expect((await rig.request("/queues/ui-live/resume", { method: "POST" })).status).toBe(200)
    await page.locator("h1 .badge", { hasText: "succeeded" }).waitFor({ timeout: 5_000 })
    // the list of a queue: a job enqueued appears by its event
    await page.goto(ui("#/jobs?queue=ui-live"))
    await page.getByRole("link", { name: job.id }).waitFor()
    await eventually(
      async () => streams,
      (s) => s.some((q) => q.includes("queue=ui-live")),
      5_000
    )
    await Bun.sleep(300)
    const next = await enqueue({ kind: "noop", payload: {}, queue: "ui-live" })
    await page.getByRole("link", { name: next.id }).waitFor({ timeout: 5_000 })
    await page.getByLabel("Refresh").selectOption("5")
    await context.close()
  })

  it("runs a delayed job now from its page", async () => {
    const job = await enqueue({ kind: "noop", payload: {}, queue: "ui-later", delayMs: 3_600_000 })
    const context = await rig.context(fullToken)
    const page = await context.newPage()
    await page.goto(ui(`#/jobs/${job.id}`))
    await page.getByText("due", { exact: true }).waitFor() // the timeline shows when it is due
    await page.getByRole("button", { name: "Run now" }).click()
    await page.getByRole("dialog").getByRole("button", { name: "Yes, run now" }).click()
    await untilStatus(job.id, "succeeded")
    await context.close()
  })

  it("pauses a queue: a job enqueued then waits; resumed, it runs", async () => {
    await untilStatus((await enqueue({ kind: "noop", payload: {}, queue: "ui-pause" })).id, "succeeded")
    const context = await rig.context(fullToken)
    const page = await context.newPage()
    await page.goto(ui("#/queues"))
    const card = page.getByRole("article").filter({ has: page.getByRole("heading", { name: "ui-pause" }) })
    await card.getByLabel("Reason").fill("deploy")
    await card.getByRole("button", { name: "Pause ui-pause" }).click()
    await page.getByRole("dialog").getByRole("button", { name: "Pause", exact: true }).click()
    await card.getByText("Paused", { exact: false }).first().waitFor()
    const waiting = await enqueue({ kind: "noop", payload: {}, queue: "ui-pause" })
    await page.goto(ui(`#/jobs/${waiting.id}`))
    await page.locator("h1 .badge", { hasText: "queued" }).waitFor()
    await Bun.sleep(1000) // a worker polls and is woken by the enqueue: it still must not take the job
    expect((await getJob(waiting.id)).status).toBe("queued")
    await page.goto(ui("#/queues"))
    await card.getByRole("button", { name: "Resume ui-pause" }).click()
    await page.getByRole("dialog").getByRole("button", { name: "Resume", exact: true }).click()
    await untilStatus(waiting.id, "succeeded")
    await page.goto(ui(`#/jobs/${waiting.id}`))
    await page.locator("h1 .badge", { hasText: "succeeded" }).waitFor()
    await context.close()
  })

  it("cancels all 500 jobs matching a filter, on the server in batches", async () => {
    expect((await rig.request("/queues/ui-bulk/pause", { method: "POST" })).status).toBe(200)
    const batch = await rig.request("/jobs/batch", {
      method: "POST",
      body: JSON.stringify({
        jobs: Array.from({ length: 500 }, () => ({ kind: "noop", payload: {}, queue: "ui-bulk" }))
      })
    })
    expect(batch.status).toBe(200)
    const context = await rig.context(fullToken)
    const page = await context.newPage()
    await page.goto(ui("#/jobs?queue=ui-bulk&status=queued"))
    await page.getByRole("row").nth(1).waitFor()
    await page.getByRole("button", { name: "Cancel all matching" }).click()
    await page.getByRole("dialog").getByRole("button", { name: "Yes, cancel" }).click()
    await page.getByText("cancel finished: 500 of 500 matching jobs changed").waitFor({ timeout: 20_000 })
    const cancelled = (await (
      await rig.request("/jobs?queue=ui-bulk&status=cancelled&limit=500")
    ).json()) as {
      jobs: Array<unknown>
    }
    expect(cancelled.jobs.length).toBe(500)
    await context.close()
  })

  it("a bulk operation goes on after the page that started it closes; a new page lists its progress", async () => {
    expect((await rig.request("/queues/ui-bulk-away/pause", { method: "POST" })).status).toBe(200)
    for (let i = 0; i < 3; i++) {
      const batch = await rig.request("/jobs/batch", {
        method: "POST",
        body: JSON.stringify({
          jobs: Array.from({ length: 1000 }, () => ({ kind: "noop", payload: {}, queue: "ui-bulk-away" }))
        })
      })
      expect(batch.status).toBe(200)
    }
    const context = await rig.context(fullToken)
    const page = await context.newPage()
    await page.goto(ui("#/jobs?queue=ui-bulk-away"))
    await page.getByRole("row").nth(1).waitFor()
    await page.getByRole("button", { name: "Delete all matching" }).click()
    const started = page.waitForResponse(
      (r) => new URL(r.url()).pathname === "/bulk-operations" && r.request().method() === "POST"
    )
    await page.getByRole("dialog").getByRole("button", { name: "Yes, delete" }).click()
    const operation = (await (await started).json()) as { id: string; status: string }
    expect(operation.status).toBe("running")
    await context.close() // the tab is gone at once
    const done = await eventually(
      async () =>
        (await (await rig.request(`/bulk-operations/${operation.id}`)).json()) as {
          status: string
          acted: number
        },
      (op) => op.status !== "running",
      30_000
    )
    expect(done).toMatchObject({ status: "succeeded", acted: 3000 })
    const left = (await (await rig.request("/jobs?queue=ui-bulk-away")).json()) as { jobs: Array<unknown> }
    expect(left.jobs).toEqual([])
    const again = await (await rig.context(fullToken)).newPage()
    await again.goto(ui("#/jobs"))
    await again
      .locator(`[data-operation="${operation.id}"]`)
      .getByText("delete succeeded: 3000 of 3000 matching jobs changed")
      .waitFor()
  })

  it("a read-only token sees everything and cannot act: the buttons and direct requests get 403", async () => {
    const job = await enqueue({ kind: "noop", payload: {}, queue: "ui-readonly" })
    await untilStatus(job.id, "succeeded")
    const context = await rig.context(readToken)
    const page = await context.newPage()
    await page.goto(ui(`#/jobs/${job.id}`))
    await page.locator("h1 .badge", { hasText: "succeeded" }).waitFor()
    await page.getByRole("button", { name: "Delete" }).click()
    await page.getByRole("dialog").getByRole("button", { name: "Yes, delete" }).click()
    await page.getByRole("alert").filter({ hasText: "403" }).waitFor()
    expect((await rig.request(`/jobs/${job.id}`, { method: "DELETE", token: readToken })).status).toBe(403)
    expect((await rig.request(`/jobs/${job.id}/retry`, { method: "POST", token: readToken })).status).toBe(
      403
    )
    expect((await getJob(job.id)).status).toBe("succeeded")
    await context.close()
  })

  it("polls at the chosen interval, and not while the tab is hidden", async () => {
    const context = await rig.context(fullToken)
    const page = await context.newPage()
    const polls: Array<number> = []
    page.on("request", (request) => {
      if (new URL(request.url()).pathname === "/stats") polls.push(Date.now())
    })
    await page.goto(ui())
    await page.getByRole("heading", { name: "Overview" }).waitFor()
    await page.getByLabel("Refresh").selectOption("1")
    const visibleFrom = Date.now()
    await eventually(
      async () => polls.filter((t) => t > visibleFrom).length,
      (n) => n >= 2,
      5_000
    )
    const setHidden = (hidden: boolean) =>
      page.evaluate((value) => {
        Object.defineProperty(document, "hidden", { configurable: true, get: () => value })
        document.dispatchEvent(new Event("visibilitychange"))
      }, hidden)
    await setHidden(true)
    const hiddenFrom = Date.now()
    await Bun.sleep(2500) // two and a half intervals: a poll would have come
    expect(polls.filter((t) => t > hiddenFrom)).toEqual([])
    await setHidden(false)
    const shownAt = Date.now()
    await eventually(
      async () => polls.filter((t) => t >= shownAt).length,
      (n) => n >= 1,
      3_000
    )
    await page.getByLabel("Refresh").selectOption("0")
    await context.close()
  })

  it("asks for a token when the API needs one: the shell loads, no data does", async () => {
    const context = await rig.context()
    const page = await context.newPage()
    await page.goto(ui())
    await page.getByRole("heading", { name: "A token is needed" }).waitFor()
    await page.getByLabel("Token", { exact: true }).fill(fullToken)
    await page.getByRole("button", { name: "Use token" }).click()
    await page.getByRole("heading", { name: "Overview" }).waitFor()
    await context.close()
  })

  it("the URL of a filtered list reproduces it", async () => {
    const a = await enqueue({ kind: "sleep", payload: { ms: 1 }, queue: "ui-url" })
    await enqueue({ kind: "sleep", payload: { ms: 2 }, queue: "ui-url" })
    await untilStatus(a.id, "succeeded")
    const context = await rig.context(fullToken)
    const page = await context.newPage()
    await page.goto(ui("#/jobs"))
    await page.getByLabel("Queue", { exact: true }).fill("ui-url")
    await page.getByLabel("Payload contains").fill('{"ms":1}')
    await page.getByRole("button", { name: "Apply filters" }).click()
    await page.getByRole("link", { name: a.id }).waitFor()
    const url = page.url()
    const again = await (await rig.context(fullToken)).newPage()
    await again.goto(url)
    await again.getByRole("link", { name: a.id }).waitFor()
    expect(await again.getByRole("row").count()).toBe(2) // the header and the one job
    expect(await again.getByLabel("Queue", { exact: true }).inputValue()).toBe("ui-url")
    await context.close()
  })

  it("works behind a proxy path prefix", async () => {
    const proxy = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: async (request) => {
        const url = new URL(request.url)
        if (!url.pathname.startsWith("/ops/jobq/")) return new Response("not here", { status: 404 })
        const upstream = `${rig.base}${url.pathname.slice("/ops/jobq".length)}${url.search}`
        // the end-to-end headers only (Bun's fetch would decompress a gzipped body and keep its header)
        const headers = new Headers()
        for (const name of ["authorization", "content-type", "accept"]) {
          const value = request.headers.get(name)
          if (value !== null) headers.set(name, value)
        }
        const body =
          request.method === "GET" || request.method === "HEAD" ? null : await request.arrayBuffer()
        const answer = await fetch(upstream, { method: request.method, headers, body, redirect: "manual" })
        return new Response(answer.status === 302 ? null : await answer.arrayBuffer(), {
          status: answer.status,
          headers: {
            "content-type": answer.headers.get("content-type") ?? "",
            ...(answer.headers.get("location") ? { location: answer.headers.get("location")! } : {})
          }
        })
      }
    })
    try {
      const context = await rig.context(fullToken)
      const page = await context.newPage()
      await page.goto(`http://127.0.0.1:${proxy.port}/ops/jobq/ui`)
      await page.getByRole("heading", { name: "Queues" }).waitFor()
      expect(new URL(page.url()).pathname).toBe("/ops/jobq/ui/")
      await context.close()
    } finally {
      proxy.stop(true)
    }
  })

  it("keyboard: select a job and cancel it without a mouse", async () => {
    expect((await rig.request("/queues/ui-keys/pause", { method: "POST" })).status).toBe(200)
    const job = await enqueue({ kind: "noop", payload: {}, queue: "ui-keys" })
    const context = await rig.context(fullToken)
    const page = await context.newPage()
    await page.goto(ui(`#/jobs?queue=ui-keys`))
    const box = page.getByLabel(`Select job ${job.id}`)
    await box.waitFor()
    await box.focus()
    await page.keyboard.press("Space")
    expect(await box.isChecked()).toBe(true)
    const cancel = page.getByRole("button", { name: "Cancel selected" })
    // Tab from the filters reaches the toolbar's buttons in order
    await page.getByRole("button", { name: "Retry selected" }).focus()
    await page.keyboard.press("Tab")
    expect(await cancel.evaluate((element) => element === document.activeElement)).toBe(true)
    await page.keyboard.press("Enter")
    const confirm = page.getByRole("dialog").getByRole("button", { name: "Yes, cancel" })
    await confirm.waitFor()
    await page.keyboard.press("Tab") // from Cancel (the dialog's first control) to the confirmation
    await page.keyboard.press("Enter")
    await untilStatus(job.id, "cancelled")
    await context.close()
  })

  it("schedules: pauses with a reason, resumes and triggers a schedule from its card, with the keyboard", async () => {
    const defined = await rig.request("/schedules", {
      method: "POST",
      body: JSON.stringify({
        name: "ui-nightly",
        cron: "30 2 * * *",
        timeZone: "Europe/Berlin",
        kind: "noop",
        queue: "ui-sched"
      })
    })
    expect(defined.status).toBe(200)
    const context = await rig.context(fullToken)
    const page = await context.newPage()
    await page.goto(ui("#/schedules"))
    const card = page.getByRole("article").filter({ has: page.getByRole("heading", { name: "ui-nightly" }) })
    await card.getByText("30 2 * * *").waitFor()
    // the next fire times read in the schedule's zone: 02:30 at Berlin's offset
    expect(await card.getByRole("list", { name: /Next fire times/ }).textContent()).toMatch(
      /\d{4}-\d{2}-\d{2} 02:30 \+0[12]:00/
    )
    // pause by keyboard: the reason field, then Tab to its button, Enter; in the dialog Tab to the confirmation
    await card.getByLabel("Reason").fill("maintenance window")
    await card.getByLabel("Reason").focus()
    await page.keyboard.press("Tab")
    expect(
      await card
        .getByRole("button", { name: "Pause ui-nightly" })
        .evaluate((e) => e === document.activeElement)
    ).toBe(true)
    await page.keyboard.press("Enter")
    await page.getByRole("dialog").getByRole("button", { name: "Pause", exact: true }).waitFor()
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await card.getByText("maintenance window").waitFor()
    await card.getByText("none while paused").waitFor()
    const paused = (await (await rig.request("/schedules/ui-nightly")).json()) as {
      paused: boolean
      pause: { reason: string } | null
    }
    expect({ paused: paused.paused, reason: paused.pause?.reason }).toEqual({
      paused: true,
      reason: "maintenance window"
    })
    // trigger (a paused schedule still triggers): the job it enqueued is linked, and runs
    // Tab from Resume reaches Trigger
    await card.getByRole("button", { name: "Resume ui-nightly" }).focus()
    await page.keyboard.press("Tab")
    const trigger = card.getByRole("button", { name: "Trigger ui-nightly" })
    expect(await trigger.evaluate((e) => e === document.activeElement)).toBe(true)
    await page.keyboard.press("Enter")
    await page.getByRole("dialog").getByRole("button", { name: "Trigger now" }).click()
    const link = card.getByRole("status").getByRole("link")
    const jobId = (await link.textContent())!
    await untilStatus(jobId, "succeeded")
    await card.getByRole("button", { name: "Resume ui-nightly" }).click()
    await page.getByRole("dialog").getByRole("button", { name: "Resume", exact: true }).click()
    await card.getByRole("button", { name: "Pause ui-nightly" }).waitFor()
    await card.locator(".badge", { hasText: "succeeded" }).waitFor() // the last run, read again after the resume
    expect(((await (await rig.request("/schedules/ui-nightly")).json()) as { paused: boolean }).paused).toBe(
      false
    )
    // the last run links to its job
    await card.getByRole("link", { name: jobId }).click()
    await page.locator("h1 .badge", { hasText: "succeeded" }).waitFor()
    await context.close()
  })

  it("flows: a diamond's page shows its jobs by level and their dependencies; cancel from the page", async () => {
    const gate = join(rig.scratch, "diamond-gate")
    const created = await rig.request("/flows", {
      method: "POST",
      body: JSON.stringify({
        onFailure: "wait", // a failed dependency leaves its dependents blocked (for the page to cancel)
        jobs: [
          { name: "fetch", kind: "noop", payload: {}, queue: "ui-flow" },
          {
            name: "left",
            kind: "gate",
            payload: { path: gate },
            queue: "ui-flow",
            dependsOn: ["fetch"],
            maxAttempts: 1
          },
          {
            name: "right",
            kind: "noop",
            payload: {},
            queue: "ui-flow",
            dependsOn: ["fetch"],
            delayMs: 3_600_000
          },
          { name: "join", kind: "noop", payload: {}, queue: "ui-flow", dependsOn: ["left", "right"] }
        ]
      })
    })
    expect(created.status).toBe(201)
    const flow = (await created.json()) as { id: string; jobs: Array<{ id: string; name: string }> }
    const idOf = (name: string) => flow.jobs.find((j) => j.name === name)!.id
    await untilStatus(idOf("left"), "failed_permanent")
    const context = await rig.context(fullToken)
    const page = await context.newPage()
    // from a job of the flow to the flow
    await page.goto(ui(`#/jobs/${idOf("join")}`))
    await page.locator("h1 .badge", { hasText: "blocked" }).waitFor()
    await page.getByRole("link", { name: /join in flow/ }).click()
    await page.getByRole("heading", { name: /^Flow / }).waitFor()
    const levels = page.locator("ol.levels > li")
    await levels.nth(2).waitFor()
    const level = async (n: number) =>
      levels
        .nth(n)
        .locator(".flow-job")
        .evaluateAll((items) =>
          items.map((item) => [
            (item as HTMLElement).dataset.name,
            item.querySelector(".badge")?.textContent,
            item.querySelector(".deps")?.textContent
          ])
        )
    expect([await level(0), await level(1), await level(2)]).toEqual([
      [["fetch", "succeeded", "waits for nothing"]],
      [
        ["left", "failed permanent", "waits for fetch"],
        ["right", "queued", "waits for fetch"]
      ],
      [["join", "blocked", "waits for left, right"]]
    ])
    expect(await page.getByRole("link", { name: "join", exact: true }).getAttribute("href")).toBe(
      `#/jobs/${idOf("join")}`
    )
    // cancel by keyboard: the button, Enter, Tab to the confirmation, Enter
    // from the header's last control, Tab reaches the flow's Cancel first
    await page.getByRole("button", { name: "Forget token" }).focus()
    await page.keyboard.press("Tab")
    const cancel = page.getByRole("button", { name: "Cancel flow" })
    expect(await cancel.evaluate((e) => e === document.activeElement)).toBe(true)
    await page.keyboard.press("Enter")
    await page.getByRole("dialog").getByRole("button", { name: "Yes, cancel the flow" }).waitFor()
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await page.locator("h1 .badge", { hasText: "cancelled" }).waitFor()
    const after = (await (await rig.request(`/flows/${flow.id}`)).json()) as {
      jobs: Array<{ name: string; status: string }>
    }
    expect(Object.fromEntries(after.jobs.map((j) => [j.name, j.status]))).toEqual({
      fetch: "succeeded",
      left: "failed_permanent",
      right: "cancelled",
      join: "cancelled"
    })
    await context.close()
  })

  it("has no serious or critical accessibility violations on any page, light or dark", async () => {
    const job = await enqueue({ kind: "flaky", payload: { failTimes: 1 }, queue: "ui-axe" })
    await untilStatus(job.id, "succeeded")
    const flow = (await (
      await rig.request("/flows", {
        method: "POST",
        body: JSON.stringify({
          jobs: [
            { name: "first", kind: "noop", payload: {}, queue: "ui-axe" },
            {
              name: "later",
              kind: "noop",
              payload: {},
              queue: "ui-axe",
              dependsOn: ["first"],
              delayMs: 3_600_000
            }
          ]
        })
      })
    ).json()) as { id: string }
    await rig.request("/schedules", {
      method: "POST",
      body: JSON.stringify({ name: "ui-axe-hourly", cron: "@hourly", kind: "noop", queue: "ui-axe" })
    })
    for (const colorScheme of ["light", "dark"] as const) {
      const context = await rig.context(fullToken, { colorScheme })
      const page = await context.newPage()
      for (const [fragment, heading] of [
        ["#/", "Overview"],
        ["#/jobs", "Jobs"],
        [`#/jobs/${job.id}`, "Attempts"],
        ["#/queues", "Queues"],
        ["#/workers", "Workers"],
        ["#/schedules", "Schedules"],
        [`#/flows/${flow.id}`, "Jobs by level"],
        ["#/enqueue", "Enqueue a job"]
      ] as const) {
        await page.goto(ui(fragment))
        await page.getByRole("heading", { name: heading, exact: true }).first().waitFor()
        expect({ page: fragment, colorScheme, violations: await axeViolations(page) }).toEqual({
          page: fragment,
          colorScheme,
          violations: []
        })
      }
      await context.close()
    }
  })
})
