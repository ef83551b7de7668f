import { describe, expect, it } from "bun:test"
import { Effect } from "effect"
import { JobRepo } from "../../src/queue/JobRepo.ts"
import { expectProblem, json, setupApiTests } from "../support/api.ts"

const { request, postJson, run } = await setupApiTests(import.meta.file)

let n = 0
const uniqueQueue = () => `api-cancel-${++n}`

describe("POST /jobs/{id}/cancel and /retry", () => {
  const enqueue = async (queue: string) =>
    (await json(await postJson("/jobs", { kind: "sleep", payload: { ms: 60_000 }, queue }))).id as string

  it("cancels a queued job (200), then refuses to cancel it again (409)", async () => {
    const id = await enqueue(uniqueQueue())
    const response = await request(`/jobs/${id}/cancel`, { method: "POST" })
    expect(response.status).toBe(200)
    const body = await json(response)
    expect(body.outcome).toBe("cancelled")
    expect(body.job.status).toBe("cancelled")
    const again = await expectProblem(
      await request(`/jobs/${id}/cancel`, { method: "POST" }),
      409,
      "job-state-conflict"
    )
    expect(again.jobStatus).toBe("cancelled")
    expect(again.jobId).toBe(id)
  })

  it("requests cancellation of a running job (202); the job stays running for its worker to settle", async () => {
    const queue = uniqueQueue()
    const id = await enqueue(queue)
    const [claimed] = await run(JobRepo.use((repo) => repo.claim("api-test-worker", 1, 30_000, [queue])))
    expect(claimed!.id).toBe(id as any)
    const response = await request(`/jobs/${id}/cancel`, { method: "POST" })
    expect(response.status).toBe(202)
    const body = await json(response)
    expect(body.outcome).toBe("cancel_requested")
    expect(body.job.status).toBe("running")
    expect(body.job.cancelRequestedAt).not.toBeNull()
  })

  it("answers 404 for cancel and retry of unknown or malformed ids", async () => {
    for (const id of [crypto.randomUUID(), "nope"]) {
      await expectProblem(await request(`/jobs/${id}/cancel`, { method: "POST" }), 404, "job-not-found")
      await expectProblem(await request(`/jobs/${id}/retry`, { method: "POST" }), 404, "job-not-found")
    }
  })

  it("retries a cancelled job with fresh attempts, and refuses to retry a queued one (409)", async () => {
    const id = await enqueue(uniqueQueue())
    const queued = await expectProblem(
      await request(`/jobs/${id}/retry`, { method: "POST" }),
      409,
      "job-state-conflict"
    )
    expect(queued.jobStatus).toBe("queued")
    await request(`/jobs/${id}/cancel`, { method: "POST" })
    const response = await request(`/jobs/${id}/retry`, { method: "POST" })
    expect(response.status).toBe(200)
    expect(await json(response)).toMatchObject({ id, status: "queued", attempts: 0, cancelRequestedAt: null })
  })

  it("retries a permanently failed job", async () => {
    const queue = uniqueQueue()
    const id = await enqueue(queue)
    await run(
      Effect.gen(function* () {
        const repo = yield* JobRepo
        yield* repo.claim("api-test-worker", 1, 30_000, [queue])
        yield* repo.fail("api-test-worker", { id, error: "boom", retryDelayMs: 0, permanent: true })
      })
    )
    expect((await json(await request(`/jobs/${id}`))).status).toBe("failed_permanent")
    const response = await request(`/jobs/${id}/retry`, { method: "POST" })
    expect(response.status).toBe(200)
    expect(await json(response)).toMatchObject({ status: "queued", attempts: 0 })
  })
})
