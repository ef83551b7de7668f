/**
 * `runAt` is an RFC 3339 date-time with an explicit offset, naming a real instant from 1970 to 9999: anything
 * else is a 422 at its path (never rolled over to another date, read in the server's time zone, or a 500).
 */
import { describe, expect, it } from "bun:test"
import { Exit, Schema } from "effect"
import fc from "fast-check"
import { instant } from "../../src/domain/Job.ts"
import { expectProblem, json, setupApiTests } from "../support/api.ts"

const { postJson, request } = await setupApiTests(import.meta.file)

const runAtIssues = async (runAt: unknown) => {
  const problem = await expectProblem(
    await postJson("/jobs", { kind: "noop", payload: {}, runAt }),
    422,
    "validation-failed"
  )
  return problem.errors as Array<{ path: Array<string | number>; message: string }>
}

describe("runAt", () => {
  it("takes RFC 3339 date-times with Z or an offset, and stores the instant they name", async () => {
    for (const [runAt, stored] of [
      ["2030-01-01T00:00:00Z", "2030-01-01T00:00:00.000Z"],
      ["2030-01-01t00:00:00.123456z", "2030-01-01T00:00:00.123Z"],
      ["2030-01-01T05:30:00+05:30", "2030-01-01T00:00:00.000Z"],
      ["2029-12-31T23:00:00-01:00", "2030-01-01T00:00:00.000Z"],
      ["2028-02-29T12:00:00Z", "2028-02-29T12:00:00.000Z"],
      ["2000-02-29T00:00:00-00:00", "2000-02-29T00:00:00.000Z"],
      ["1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000Z"],
      ["1969-12-31T23:00:00-01:00", "1970-01-01T00:00:00.000Z"],
      ["9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"]
    ]) {
      const response = await postJson("/jobs", { kind: "noop", payload: {}, runAt })
      expect({ runAt, status: response.status }).toEqual({ runAt, status: 201 })
      expect((await json(response)).runAt).toBe(stored)
    }
  })

  it("refuses dates that do not exist instead of rolling them over", async () => {
    for (const runAt of [
      "2030-02-30T00:00:00Z",
      "2031-02-29T00:00:00Z",
      "1900-02-29T00:00:00Z",
      "2030-04-31T00:00:00Z",
      "2030-13-01T00:00:00Z",
      "2030-00-10T00:00:00Z",
      "2030-01-00T00:00:00Z"
    ]) {
      expect(await runAtIssues(runAt)).toEqual([
        { path: ["body", "runAt"], message: `Expected a calendar date: ${runAt.slice(0, 10)} does not exist` }
      ])
    }
  })

  it("refuses times of day and offsets that do not exist, leap seconds included", async () => {
    for (const runAt of ["2030-01-01T24:00:00Z", "2030-01-01T23:60:00Z", "2030-12-31T23:59:60Z"]) {
      const [issue] = await runAtIssues(runAt)
      expect(issue!.message).toStartWith("Expected a time of day")
    }
    for (const runAt of ["2030-01-01T00:00:00+24:00", "2030-01-01T00:00:00-05:60"]) {
      const [issue] = await runAtIssues(runAt)
      expect(issue!.message).toStartWith("Expected an offset within")
    }
  })

  it("refuses anything but RFC 3339 with an offset: no local times, no other formats", async () => {
    for (const runAt of [
      "2030-02-30",
      "2030-01-01",
      "1 Jan 2030",
      "Tue, 01 Jan 2030 00:00:00 GMT",
      "2030-01-01T00:00:00",
      "2030-01-01T00:00Z",
      "2030-01-01 00:00:00Z",
      "20300101T000000Z",
      "2030-01-01T00:00:00+0100",
      "2030-01-01T00:00:00+01",
      "2030-01-01T00:00:00.Z",
      " 2030-01-01T00:00:00Z",
      "2030-01-01T00:00:00Z\n",
      "+012030-01-01T00:00:00Z",
      "-004714-01-01T00:00:00Z",
      "２０３０-01-01T00:00:00Z",
      ""
    ]) {
      const [issue] = await runAtIssues(runAt)
      expect({ runAt, message: issue!.message }).toEqual({
        runAt,
        message:
          "Expected an RFC 3339 date-time with an offset, such as 2030-01-01T00:00:00Z or 2030-01-01T01:00:00+01:00"
      })
    }
    for (const runAt of [1893456000000, null, true, {}]) {
      expect((await runAtIssues(runAt)).map((issue) => issue.path)).toEqual([["body", "runAt"]])
    }
  })

  it("refuses instants before 1970 or after 9999 (UTC)", async () => {
    for (const runAt of [
      "0000-01-01T00:00:00Z",
      "0099-12-31T23:59:59+23:59",
      "1969-12-31T23:59:59.999Z",
      "1970-01-01T00:30:00+01:00",
      "9999-12-31T23:59:59.999-00:01"
    ]) {
      expect(await runAtIssues(runAt)).toEqual([
        {
          path: ["body", "runAt"],
          message: "Expected an instant from 1970-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z"
        }
      ])
    }
  })

  it("is checked per item in a batch, at its index", async () => {
    const problem = await expectProblem(
      await postJson("/jobs/batch", {
        jobs: [
          { kind: "noop", payload: {}, runAt: "2030-01-01T00:00:00Z" },
          { kind: "noop", payload: {}, runAt: "2030-02-30T00:00:00Z" }
        ]
      }),
      422,
      "validation-failed"
    )
    expect(problem.errors.map((issue: { path: Array<unknown> }) => issue.path)).toEqual([
      ["body", "jobs", 1, "runAt"]
    ])
  })

  it("decodes every instant in range from its ISO string, and from any offset, to the same instant", () => {
    const decode = Schema.decodeUnknownExit(instant("when"))
    fc.assert(
      fc.property(
        fc.date({
          min: new Date("1970-01-02T00:00:00Z"),
          max: new Date("9999-12-30T00:00:00Z"),
          noInvalidDate: true
        }),
        fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 }),
        (date, offsetMinutes) => {
          const iso = decode(date.toISOString())
          expect(Exit.isSuccess(iso) && iso.value.getTime()).toBe(date.getTime())
          const local = new Date(date.getTime() + offsetMinutes * 60_000).toISOString().slice(0, 23)
          const sign = offsetMinutes < 0 ? "-" : "+"
          const abs = Math.abs(offsetMinutes)
          const offset = `${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`
          const shifted = decode(`${local}${offset}`)
          expect(Exit.isSuccess(shifted) && shifted.value.getTime()).toBe(date.getTime())
        }
      )
    )
  })

  it("is documented as a date-time string", async () => {
    const spec = await json(await request("/api-docs/openapi.json"))
    for (const kind of ["noop", "sleep", "flaky", "cpu_hash"]) {
      expect(spec.components.schemas[`NewJob_${kind}`].properties.runAt).toMatchObject({
        type: "string",
        format: "date-time"
      })
    }
  })
})
