/**
 * The rules of flows on top of `FlowRepo`: a flow has 1 to `maxFlowJobs` jobs with distinct names, each
 * depending only on names of the same flow, without a cycle; each job is checked as an enqueue checks it.
 * `Queue` exposes these as `enqueueFlow`, `getFlow` and `cancelFlow`.
 */
import { Duration, Effect } from "effect"
import type { SqlClient, SqlError } from "effect/sql"
import type { InvalidPayload, InvalidUnique, UnknownJobKind } from "../domain/errors.ts"
import {
  defaultFailurePolicy,
  type Flow,
  type FlowJob,
  FlowNotFound,
  type FlowStatus,
  InvalidFlow,
  isFlowId,
  maxFlowJobs,
  type NewFlow
} from "../domain/Flow.ts"
import { isTerminal, type NewJob } from "../domain/Job.ts"
import { type FlowJobInsert, FlowRepo, type FlowRow } from "./FlowRepo.ts"
import { uuidv7 } from "./ids.ts"
import type { JobInsert, JobRepo } from "./JobRepo.ts"
import * as TraceContext from "./TraceContext.ts"

type Prepared = JobInsert | UnknownJobKind | InvalidPayload | InvalidUnique

export interface FlowsOptions {
  readonly sql: SqlClient.SqlClient
  readonly jobRepo: JobRepo["Service"]
  readonly flowRepo: FlowRepo["Service"]
  /** The enqueue's own check of one job (Queue's `prepare`). */
  readonly prepare: (
    input: NewJob,
    index: number,
    captured: TraceContext.TraceCarrier | undefined
  ) => Prepared
}

const namePattern = /^[A-Za-z0-9_.:-]{1,128}$/

const invalid = (message: string, job?: string, path: ReadonlyArray<string | number> = []) =>
  new InvalidFlow({ ...(job === undefined ? {} : { job }), issues: [{ path: [...path], message }], message })

/**
 * The order to insert in (dependencies first) or, when the dependencies make a cycle, the cycle as names
 * (`a -> b -> a`). Kahn's algorithm; a job left over sits on a cycle or behind one, and walking its
 * left-over dependencies from it must come back to a job already seen.
 */
const cycleOf = (deps: ReadonlyMap<string, ReadonlyArray<string>>): Array<string> | undefined => {
  const waiting = new Map<string, number>()
  const dependents = new Map<string, Array<string>>()
  for (const [name, on] of deps) {
    waiting.set(name, on.length)
    for (const parent of on) {
      const list = dependents.get(parent) ?? []
      list.push(name)
      dependents.set(parent, list)
    }
  }
  const ready = [...waiting].filter(([, n]) => n === 0).map(([name]) => name)
  while (ready.length > 0) {
    const name = ready.pop()!
    waiting.delete(name)
    for (const child of dependents.get(name) ?? []) {
      const n = waiting.get(child)! - 1
      waiting.set(child, n)
      if (n === 0) ready.push(child)
    }
  }
  if (waiting.size === 0) return undefined
  const path: Array<string> = []
  const seen = new Map<string, number>()
  let at = waiting.keys().next().value!
  while (!seen.has(at)) {
    seen.set(at, path.length)
    path.push(at)
    at = deps.get(at)!.find((parent) => waiting.has(parent))!
  }
  return [...path.slice(seen.get(at)!), at]
}

/** Where a flow stands, from its jobs. */
const statusOf = (row: FlowRow, jobs: ReadonlyArray<FlowJob>): FlowStatus => {
  if (row.cancelledAt !== null) return "cancelled"
  if (jobs.some((job) => !isTerminal(job.status))) return "active"
  return jobs.every((job) => job.status === "succeeded") ? "succeeded" : "failed"
}

export const make = ({ sql, jobRepo, flowRepo, prepare }: FlowsOptions) => {
  /** Checks a flow and makes its rows, or names what is wrong; plain code, bounded by `maxFlowJobs`. */
  const check = (flow: NewFlow, captured: TraceContext.TraceCarrier | undefined) => {
    const jobs = flow.jobs
    if (jobs.length === 0) return invalid("a flow needs at least one job", undefined, ["jobs"])
    if (jobs.length > maxFlowJobs) {
      const extra = jobs[maxFlowJobs]!
      return invalid(
        `job "${extra.name}" is one too many: a flow holds at most ${maxFlowJobs} jobs`,
        extra.name,
        ["jobs", maxFlowJobs]
      )
    }
    const ids = new Map<string, string>()
    const deps = new Map<string, ReadonlyArray<string>>()
    for (let index = 0; index < jobs.length; index++) {
      const job = jobs[index]!
      if (!namePattern.test(job.name)) {
        return invalid(`job name "${job.name}" is not 1-128 characters of A-Z a-z 0-9 _ . : -`, job.name, [
          "jobs",
          index,
          "name"
        ])
      }
      if (ids.has(job.name)) {
        return invalid(`job name "${job.name}" is used twice in the flow`, job.name, ["jobs", index, "name"])
      }
      ids.set(job.name, uuidv7())
      const on = [...new Set(job.dependsOn ?? [])]
      if (on.length > maxFlowJobs) {
        return invalid(`job "${job.name}" names more than ${maxFlowJobs} dependencies`, job.name, [
          "jobs",
          index,
          "dependsOn"
        ])
      }
      deps.set(job.name, on)
    }
    for (let index = 0; index < jobs.length; index++) {
      const job = jobs[index]!
      const unknown = deps.get(job.name)!.find((parent) => !ids.has(parent))
      if (unknown !== undefined) {
        return invalid(`job "${job.name}" depends on "${unknown}", which is no job of this flow`, job.name, [
          "jobs",
          index,
          "dependsOn"
        ])
      }
    }
    const cycle = cycleOf(deps)
    if (cycle !== undefined) {
      const index = jobs.findIndex((job) => job.name === cycle[0])
      return invalid(`job "${cycle[0]}" depends on itself: ${cycle.join(" -> ")}`, cycle[0], [
        "jobs",
        index,
        "dependsOn"
      ])
    }
    const rows: Array<FlowJobInsert> = []
    const edges: Array<readonly [string, string]> = []
    for (let index = 0; index < jobs.length; index++) {
      const { name, dependsOn: _, ...input } = jobs[index]!
      const row = prepare(input, index, captured)
      if ("_tag" in row) {
        // a payload's issues are paths inside the payload: under `payload`, as a batch item's are
        const [under, issues] =
          row._tag === "UnknownJobKind"
            ? [[], [{ path: ["kind"], message: row.message }]]
            : [[row._tag === "InvalidPayload" ? "payload" : "unique"], row.issues]
        return new InvalidFlow({
          job: name,
          issues: issues.map((issue) => ({
            path: ["jobs", index, ...under, ...issue.path],
            message: issue.message
          })),
          message: `job "${name}": ${row.message}`
        })
      }
      const on = deps.get(name)!
      // the ids chosen above, not prepare's: dependencies may come after their dependents in the request
      rows.push({ ...row, id: ids.get(name)!, name, pendingDeps: on.length })
      for (const parent of on) edges.push([ids.get(parent)!, ids.get(name)!])
    }
    // in id order, which is the request's order (ids are time-ordered, chosen in that order)
    return { rows, edges }
  }

  const view = (row: FlowRow, jobs: ReadonlyArray<FlowJob>): Flow =>
    ({
      id: row.id,
      status: statusOf(row, jobs),
      onFailure: row.onFailure,
      createdAt: row.createdAt,
      cancelledAt: row.cancelledAt,
      jobs
    }) as Flow

  const load = (id: string) =>
    Effect.gen(function* () {
      if (!isFlowId(id)) return yield* FlowNotFound.of(id)
      const row = yield* flowRepo.get(id)
      if (row === undefined) return yield* FlowNotFound.of(id)
      return view(row, yield* flowRepo.jobs(id))
    })

  /**
   * Inserts a flow, all or none, in one transaction (a savepoint inside the caller's transaction): jobs
   * without dependencies `queued`, the others `blocked` until their dependencies succeed.
   */
  const enqueueFlow = (flow: NewFlow): Effect.Effect<Flow, InvalidFlow | SqlError.SqlError> =>
    Effect.gen(function* () {
      const checked = check(flow, yield* TraceContext.capture)
      if (checked instanceof InvalidFlow) return yield* checked
      const id = uuidv7()
      const onFailure = flow.onFailure ?? defaultFailurePolicy
      const inserted = yield* sql.withTransaction(
        flowRepo.insert({ id, onFailure, jobs: checked.rows, edges: checked.edges })
      )
      const byId = new Map(inserted.map((row) => [row.id as string, row]))
      const parents = new Map<string, Array<string>>()
      const names = new Map(checked.rows.map((row) => [row.id, row.name]))
      for (const [parent, child] of checked.edges) {
        const list = parents.get(child) ?? []
        list.push(names.get(parent)!)
        parents.set(child, list)
      }
      const jobs = checked.rows.map((row): FlowJob => {
        const stored = byId.get(row.id)!
        return {
          id: stored.id,
          name: row.name,
          kind: row.kind,
          queue: row.queue,
          status: stored.status,
          dependsOn: parents.get(row.id) ?? [],
          attempts: 0,
          lastError: null,
          createdAt: stored.createdAt,
          finishedAt: null
        }
      })
      return view({ id, onFailure, createdAt: jobs[0]!.createdAt, cancelledAt: null }, jobs)
    }).pipe(Effect.withSpan("Queue.enqueueFlow", { attributes: { "flow.jobs": flow.jobs.length } }))

  const getFlow = (id: string): Effect.Effect<Flow, FlowNotFound | SqlError.SqlError> => load(id)

  /**
   * Cancels every unfinished job of a flow: blocked, queued and retrying ones end `cancelled`; running ones
   * get their cancel requested (their worker interrupts them). Statement by statement, each locking either
   * waiting jobs in id order or one running job, so it never deadlocks with completions; repeated while a
   * job slipped between two statements (claimed, or unblocked, meanwhile).
   */
  const cancelFlow = (id: string): Effect.Effect<Flow, FlowNotFound | SqlError.SqlError> =>
    Effect.gen(function* () {
      if (!isFlowId(id)) return yield* FlowNotFound.of(id)
      const marked = yield* flowRepo.markCancelled(id)
      if (marked === undefined) return yield* FlowNotFound.of(id)
      for (let round = 0; round < 50; round++) {
        yield* flowRepo.cancelBlocked(id, "flow cancelled")
        yield* flowRepo.cancelReady(id, "flow cancelled")
        for (const running of yield* flowRepo.runningUncancelled(id)) yield* jobRepo.cancel(running)
        if ((yield* flowRepo.unsettled(id)) === 0) break
        yield* Effect.sleep(Duration.millis(10 + round * 10))
      }
      return view(marked, yield* flowRepo.jobs(id))
    }).pipe(Effect.withSpan("Queue.cancelFlow"))

  return { enqueueFlow, getFlow, cancelFlow }
}

export { FlowRepo }
