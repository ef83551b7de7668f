/**
 * The worker pool. One fetch fiber claims jobs in batches into a local buffer, up to `concurrency +
 * prefetch` buffered or running at once (jobs whose completion is still committing do not count), with up
 * to `claimsInFlight` claims sent at once on a connection of their own, where Postgres runs them one after
 * the other (`ClaimSession`; docs/tradeoffs.md, "Claims in flight"). Each
 * job runs in its own fiber, started as soon as one of the `concurrency` slots is free: when a claim lands
 * or when a running job's fiber exits. A job ends by its `Exit` (see `Settlement`). Successes are
 * completed in batches by the `Completer`; a slot frees as soon as its handler returns.
 *
 * The jobs it claims hold no lease of their own: the worker's row in `workers` holds them all, extended by
 * its heartbeat (`Heartbeat`), so liveness costs one write per worker, not one per job. Every
 * `renewInterval` the pool looks at the jobs it holds (one statement that writes nothing but starts to
 * record): the rescuer may have taken a job back (then our run stops and settles nothing), or a cancel may
 * have been asked. Cancelling a running job is interrupting its fiber: the request reaches us by NOTIFY on
 * `jobq_cancel` or, as a fallback, with that look, which covers buffered jobs too. A lease watch stops every
 * job before the worker's lease runs out when heartbeats fail; jobs the worker gives up on that way, or whose
 * settlement failed, are handed back to the queue by the next look (`JobRepo.abandon`): while the worker
 * lives its row would hold them forever.
 *
 * The look also records which held jobs have started: the rescuer refunds the attempt of a job
 * whose start was never recorded (it waited in a dead worker's buffer). A job the rescuer refunded before
 * (`recordStartFirst`) has its start recorded before its handler runs, so that a job that kills its worker
 * at once still spends its attempts. Recording every start that way would cost a round trip per job.
 */
import {
  Cause,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  FiberHandle,
  FiberSet,
  Layer,
  Metric,
  Option,
  Queue,
  References,
  Schedule,
  Semaphore,
  type Tracer
} from "effect"
import type { SqlError } from "effect/sql"
import { RetryConfig, retentionOf, WorkerConfig } from "../Config.ts"
import { ClaimSession } from "../db/ClaimSession.ts"
import { JobKinds } from "../domain/JobKind.ts"
import { StopNow } from "../platform/Main.ts"
import { EventsFollowed } from "../queue/eventBatch.ts"
import { type ClaimedJob, JobRepo } from "../queue/JobRepo.ts"
import * as Notifier from "../queue/Notifier.ts"
import { QueueRepo } from "../queue/QueueRepo.ts"
import { decorrelatedJitter } from "../queue/Retry.ts"
import * as ClaimSize from "./ClaimSize.ts"
import * as Completer from "./Completer.ts"
import * as ExecutionSpan from "./ExecutionSpan.ts"
import { run as runAttempt } from "./Executor.ts"
import { followWatch } from "./FollowWatch.ts"
import { Heartbeat } from "./Heartbeat.ts"
import * as Progress from "./Progress.ts"
import { QueueLabels } from "./QueueLabels.ts"
import * as Settlement from "./Settlement.ts"
import * as Steering from "./Steering.ts"
import * as WakeTimes from "./WakeTimes.ts"
import * as Metrics from "./WorkerMetrics.ts"

const make = Effect.gen(function* () {
  const config = yield* WorkerConfig
  const retry = yield* RetryConfig
  const repo = yield* JobRepo
  const queueRepo = yield* QueueRepo
  const kinds = yield* JobKinds
  const { workerId, concurrency, prefetch } = config
  const stopNow = yield* StopNow
  const leaseMs = Duration.toMillis(config.lease)
  const heartbeat = yield* Heartbeat
  // WORKER_CLAIMS_IN_FLIGHT above 1: the claims pipelined on a session of their own; without one (the embedded
  // database, a transaction pooler) one at a time on the pool
  const claimSession = yield* Effect.serviceOption(ClaimSession)
  const depth = Option.isSome(claimSession) ? config.claimsInFlight : 1
  const claimRepo =
    Option.isSome(claimSession) && depth > 1 ? yield* JobRepo.on(yield* claimSession.value.open(depth)) : repo
  // `WORKER_PREFETCH=auto`: the buffer follows observed job and claim times, up to `prefetch`
  const claimSize = config.adaptivePrefetch === true ? ClaimSize.make(concurrency, prefetch) : undefined
  const prefetchNow = () => (claimSize === undefined ? prefetch : claimSize.prefetch())
  const capacity = () => concurrency + prefetchNow()
  // refill once the buffer is half empty (with no prefetch: as soon as a slot frees)
  const lowWater = () => concurrency + Math.floor(prefetchNow() / 2) - 1
  // a claim sent while another is in flight asks for at least a share of the buffer, as the claim's fixed
  // cost is the same whatever its size
  const pipelinedClaimMin = () => Math.max(1, Math.floor(prefetchNow() / (depth + 1)))
  // job fibers start from plain callbacks (a claim landing, another job's fiber exiting) with the pool's
  // services; each is a root fiber, tracked in `running` below and stopped by the pool's finalizer
  const services = yield* Effect.context<never>()
  const fork = Effect.runForkWith(services)
  const metricsFor = Metrics.jobMetrics(services, kinds.names, yield* QueueLabels)

  // made first, so that closing the pool's scope flushes its pending completions last
  const deleteSucceeded = Duration.isZero(retentionOf(config).succeeded ?? Duration.infinity)
  const completer = yield* Completer.make({ workerId, capacity: concurrency + prefetch, deleteSucceeded })
  /** Claimed and not yet settled: buffered, running, or waiting for its completion to commit. */
  const held = new Map<string, ClaimedJob>()
  /** Claimed and not yet started, oldest first (`next` is the index of the first). */
  let buffer: Array<ClaimedJob> = []
  let next = 0
  /** Ids of the buffered jobs still to start (a job stopped while buffered leaves at once, not in order). */
  const unstarted = new Set<string>()
  /** Held jobs of limited queues (claimed by `claimLimited`): at most `concurrency` at once. */
  const limitedIds = new Set<string>()
  /** Whether a claim from the limited queues may find something: cleared by one that found nothing. */
  let limitedWanted = true
  /**
   * The fiber of every job that started and whose fiber has not exited. Keyed, as `stopReasons`, by the
   * claimed job (one attempt), not its id: an attempt stopped as its lease ran out may still be exiting when
   * this worker claims the same job again after a rescue, and the old attempt must not touch the new one's
   * entries (the new one was handed back, or ran over the concurrency unseen at shutdown).
   */
  const running = new Map<ClaimedJob, Fiber.Fiber<unknown, unknown>>()
  /** Taken from the buffer (a slot is theirs), waiting for their start to be recorded (`recordStartFirst`). */
  const recording = new Map<string, ClaimedJob>()
  let recorder: Fiber.Fiber<void> | undefined
  const stopReasons = new Map<ClaimedJob, Settlement.StopReason>()
  const wake = yield* Queue.sliding<void>(1)
  const signal = Queue.offer(wake, undefined).pipe(Effect.asVoid)
  const wakeTimes = WakeTimes.make(Duration.toMillis(config.pollInterval))
  const leases = heartbeat.clock
  /**
   * Jobs this worker gave up on without settling them (stopped as its lease ran out, or their settlement
   * failed): handed back to the queue at the next look, retried until the database answers.
   */
  const abandoned = new Set<string>()
  const abandon = (job: ClaimedJob) => {
    abandoned.add(job.id)
  }
  /**
   * Claims and hand-backs take turns: a hand-back matches a job by its id and this worker, so a claim that
   * took the same job again (after a rescue) while the hand-back was on its way would have lost the new run.
   */
  const claimOrHandBack = yield* Semaphore.make(depth)
  /** Claims sent and not landed yet (at most `depth`), and the jobs they may bring: both count as held. */
  let claimsInFlight = 0
  let roomInFlight = 0
  /** Landed when the last claim sent has: each claim lands after the one sent before it. */
  let lastLanding: Deferred.Deferred<void> | undefined
  /** A hand-back waits for the claims in flight to land (all of `claimOrHandBack`): none is sent meanwhile. */
  let handBackWaiting = false
  /**
   * A wake-up came while claims were in flight and no claim could be sent beside them (a job announced, a
   * queue resumed): the next claim to land or fail wakes the fetch fiber again, or the job would wait for
   * the next poll.
   */
  let wokenInFlight = false
  /** When the last claim landed: a pipelined claim's own time starts no earlier (`ClaimSize`). */
  let lastLandedAt = 0
  /** A pipelined claim failed: the fetch loop fails with it and backs off. */
  let claimError: SqlError.SqlError | undefined
  /** The claims forked while another is in flight (`depth` above 1), awaited at shutdown. */
  const claims = yield* FiberSet.make<void, never>()
  /**
   * The stops under way (`stopAll`, cancel notifications): forked, so that a handler slow to stop holds up
   * neither the jobs stopped beside it nor the loop that asked (the lease watch, the look); made before the
   * shutdown's finalizer, so they go on through it and end with the pool.
   */
  const stops = yield* FiberSet.make<void, never>()
  /**
   * Jobs on their way back to the queue (`giveBack`): out of `held`, still this worker's in the database
   * until the release commits, so not strays.
   */
  const releasing = new Set<string>()
  /**
   * When to look for strays (`JobRepo.handBackStrays`: jobs this worker holds in the database but never
   * heard of, as when a claim committed and its answer was lost): after a claim failed, and once a lease
   * (a statement the server went on with after the connection broke commits later, unheard of too).
   */
  let strayLookDue = false
  let nextStrayLook = performance.now() + leaseMs
  const strayLookPending = () => strayLookDue || performance.now() >= nextStrayLook
  let accepting = true
  // the last claim filled the buffer: more jobs are probably waiting, so refill when it runs low
  let backlog = false
  // one refill request per claim: the slots that free below the low-water mark ask once, not once each
  let refillAsked = false

  const settlement = Settlement.make({
    workerId,
    repo,
    retry,
    completer,
    // deleting succeeded jobs keeps only flow jobs' results (their dependents read them)
    keepsResult: (job) => !deleteSucceeded || job.flowId !== null,
    metrics: metricsFor,
    onAbandoned: abandon,
    onSettled: (job) => {
      stopReasons.delete(job)
      // the id held again by a newer attempt (claimed anew after a rescue): its entries are not this one's
      if (held.get(job.id) !== job) return
      held.delete(job.id)
      // a limited queue's job settled: its slot under the limit is free, claim again (after the commit)
      if (limitedIds.delete(job.id)) {
        limitedWanted = true
        Queue.offerUnsafe(wake, undefined)
      }
    },
    onRetryScheduled: (runAt) => {
      wakeTimes.add(runAt.getTime())
      Queue.offerUnsafe(wake, undefined)
    }
  })

  const spans = ExecutionSpan.make(services)

  const attempt = (job: ClaimedJob, metrics: Metrics.JobMetrics, span: Tracer.Span | undefined) => {
    const startedAt = performance.now()
    // made by the first report: a job that reports nothing costs nothing
    let progress: Progress.ProgressReporter | undefined
    const report = (value: unknown) => {
      progress ??= Progress.make((text) => repo.setProgress(workerId, job.id, text), fork)
      return progress.report(value)
    }
    return runAttempt(kinds, job, report).pipe(
      Effect.onExit((exit) => {
        metrics.executionSeconds.observe((performance.now() - startedAt) / 1000)
        claimSize?.ran(performance.now() - startedAt)
        const reason = stopReasons.get(job)
        if (span !== undefined) spans.setOutcome(span, Settlement.outcomeOf(exit, reason))
        const settle = settlement.settle(job, exit, reason)
        // a job whose lease is lost writes nothing (the write would be refused), and the database may be
        // out of reach, which is why the lease was lost: a pending progress report would wait for it
        return progress === undefined || reason === "lease_lost"
          ? settle
          : Effect.andThen(progress.flush, settle)
      })
    )
  }

  const poolAnnotations = Context.get(services, References.CurrentLogAnnotations)
  /**
   * The context a job's fiber starts with: its log annotations already in it. `Effect.annotateLogs` around
   * the attempt set them when the fiber started and put the old ones back at its end, about 1 us a job
   * against 0.25 for this (a fiber micro-benchmark, bench/RESULTS.md), a tenth of a busy worker's CPU.
   */
  const jobContext = (job: ClaimedJob, base: Context.Context<never>) =>
    Context.add(base, References.CurrentLogAnnotations, {
      ...poolAnnotations,
      fiber: "job",
      jobId: job.id,
      kind: job.kind,
      attempt: job.attempts
    })

  /** Starts one job's fiber (a job stopped while buffered never gets here: `stop` settles it at once). */
  const start = (job: ClaimedJob) => {
    const metrics = metricsFor(job)
    const queueWaitMs = Math.max(0, (job.startedAt ?? new Date()).getTime() - job.runAt.getTime())
    metrics.queueWaitSeconds.observe(queueWaitMs / 1000)
    const span = spans.start(job, queueWaitMs)
    const run = attempt(job, metrics, span)
    const fiber = Effect.runForkWith(jobContext(job, span === undefined ? services : spans.contextFor(span)))(
      run
    )
    running.set(job, fiber)
    // runs at once when the fiber already exited (a job that never suspended)
    fiber.addObserver((exit) => {
      if (span !== undefined) spans.end(span, exit)
      running.delete(job)
      startReady()
    })
  }

  /** Buffered or running. Jobs whose completion is being committed do not count: their handlers are done,
   *  and claiming the next batch while they commit keeps both of the pool's statements in flight. */
  const unfinished = () => unstarted.size + recording.size + running.size

  /** Room in the buffer beside what is held and what the claims in flight may bring. */
  const roomLeft = () => capacity() - unfinished() - roomInFlight
  /** Whether another claim is worth sending now (see `lowWater` and `pipelinedClaimMin`). */
  const claimWanted = () =>
    claimsInFlight === 0 || depth === 1
      ? unfinished() <= lowWater()
      : claimsInFlight < depth && roomLeft() >= pipelinedClaimMin()

  let starting = false
  // jobs started in one turn of `startReady` while claims are pipelined
  const startBatch = 64
  let resumeScheduled = false
  /** The rest of the buffer starts after the fibers waiting now have run (`startBatch`). */
  const resumeLater = () => {
    if (resumeScheduled) return
    resumeScheduled = true
    fork(
      Effect.andThen(
        Effect.yieldNow,
        Effect.sync(() => {
          resumeScheduled = false
          startReady()
        })
      )
    )
  }
  /** Fills the free slots from the buffer. A job that finishes while this loop starts it frees its slot
   *  for the same loop (no recursion). With claims pipelined, at most `startBatch` jobs a turn: jobs that
   *  never wait would otherwise run the whole buffer in one go, and the claim asked for at half of it would
   *  only be sent once the buffer was empty. */
  const startReady = () => {
    if (starting) return
    starting = true
    try {
      let started = 0
      while (accepting && running.size + recording.size < concurrency && next < buffer.length) {
        if (depth > 1 && started++ === startBatch) {
          resumeLater()
          break
        }
        const job = buffer[next] as ClaimedJob
        buffer[next++] = undefined as never
        // an older attempt left in the buffer when the job was claimed again (after a rescue) is not run
        if (held.get(job.id) !== job || !unstarted.delete(job.id)) continue
        if (job.recordStartFirst) recording.set(job.id, job)
        else start(job)
      }
      if (recording.size > 0 && recorder === undefined && accepting) recorder = fork(recordStarts)
      if (next === buffer.length) {
        buffer = []
        next = 0
      }
      if (backlog && !refillAsked && claimWanted()) {
        refillAsked = true
        Queue.offerUnsafe(wake, undefined)
      }
    } finally {
      starting = false
    }
  }

  /**
   * Records the start of the jobs in `recording`, then starts them; one statement at a time, retried while
   * the database does not answer. A job stopped meanwhile is settled without starting, one whose lease is
   * gone is dropped. Interrupted at shutdown, which releases whatever is still waiting here.
   */
  const recordStarts: Effect.Effect<void> = Effect.gen(function* () {
    const batch = [...recording.values()]
    const stillHeld = new Set<string>(
      yield* repo
        .markStarted(
          workerId,
          batch.map((job) => job.id)
        )
        .pipe(
          Effect.tapError((error) =>
            Effect.logWarning("recording job starts failed; retrying", error.message)
          ),
          Effect.retry(decorrelatedJitter({ base: "50 millis", cap: "5 seconds" })),
          Effect.orDie
        )
    )
    yield* Effect.uninterruptible(
      Effect.gen(function* () {
        for (const job of batch) {
          // shutting down: the finalizer releases what is still waiting
          if (!accepting) continue
          // given back meanwhile (its queue was paused): not ours to start
          if (!recording.delete(job.id)) continue
          const reason = stillHeld.has(job.id) ? stopReasons.get(job) : "lease_lost"
          if (reason === undefined) start(job)
          else yield* settlement.settleUnstarted(job, reason)
        }
        recorder = undefined
        startReady()
      })
    )
  }).pipe(Effect.annotateLogs({ module: "WorkerPool", fiber: "record-starts" }))

  /**
   * Stops a held job, remembering why so that it is settled right: a running one by interrupting its fiber,
   * a buffered one at once, without starting it. One whose handler already returned settles as it was going to.
   */
  const stop = (id: string, reason: Settlement.StopReason) =>
    Effect.suspend(() => {
      const job = held.get(id)
      if (job === undefined || stopReasons.has(job)) return Effect.void
      stopReasons.set(job, reason)
      const fiber = running.get(job)
      if (fiber !== undefined) return Fiber.interrupt(fiber)
      return unstarted.delete(id) ? settlement.settleUnstarted(job, reason) : Effect.void
    })

  /**
   * Stops the jobs side by side, without waiting for them: stopping one waits until its fiber has ended (its
   * finalizers run), and one after the other a handler slow to stop held up the interruption of the next,
   * which past its lease then ran beside the worker that took it over.
   */
  const stopAll = (ids: ReadonlyArray<string>, reason: Settlement.StopReason) =>
    Effect.forEach(ids, (id) => FiberSet.run(stops, stop(id, reason)), { discard: true })

  /**
   * Claimed jobs (by a statement sent at `askedAt`) join the buffer: at its end, or, for limited queues'
   * jobs, at its front.
   */
  const land = (jobs: ReadonlyArray<ClaimedJob>, askedAt: number, front: boolean) => {
    leases.leased(jobs, askedAt)
    for (const job of jobs) {
      held.set(job.id, job)
      metricsFor(job).claimed.add(1)
      unstarted.add(job.id)
    }
    if (front) buffer.splice(next, 0, ...jobs)
    else for (const job of jobs) buffer.push(job)
  }

  /**
   * Claims from the limited queues this worker serves, when a claim may find something, up to
   * `concurrency` of their jobs held at once. They start ahead of buffered jobs: each holds a slot under
   * its queue's limit, over every worker, for as long as it waits.
   */
  const claimLimited = Effect.gen(function* () {
    const room = concurrency - limitedIds.size
    if (!limitedWanted || room <= 0 || !steering.hasLimited()) return
    const askedAt = performance.now()
    const { jobs, heldBack } = yield* steering.claimLimited(room)
    if (jobs.length === 0) limitedWanted = false
    for (const cut of heldBack) {
      yield* Metric.update(
        Metric.withAttributes(Metrics.claimsHeldBack, { queue: cut.queue, limit: cut.limit }),
        1
      )
      if (cut.reopensAt !== null) wakeTimes.add(cut.reopensAt.getTime())
    }
    for (const job of jobs) limitedIds.add(job.id)
    land(jobs, askedAt, true)
  })

  /**
   * Claims up to `limit` jobs and lands them, after the claim sent before it landed (with claims pipelined on
   * one session they are answered in order anyway). Uninterruptible: interrupted in flight (at shutdown), the
   * statement can still commit, and its jobs would stay leased to a worker that never heard of them until
   * their leases expired. Landed, shutdown releases them with the rest of the buffer. The caller counted it
   * in flight.
   */
  const claimAndLand = (
    limit: number,
    landed: Deferred.Deferred<void>,
    before: Deferred.Deferred<void> | undefined
  ) => {
    let countedOff = false
    const countOff = () => {
      if (countedOff) return
      countedOff = true
      claimsInFlight--
      roomInFlight -= limit
    }
    return Effect.gen(function* () {
      const began = performance.now()
      const claimed = yield* steering.claim(limit).pipe(
        Effect.tap((jobs) => Effect.annotateCurrentSpan("jobq.claim.count", jobs.length)),
        Effect.withSpan("jobq.claim", { attributes: { "jobq.claim.limit": limit } })
      )
      if (before !== undefined) yield* Deferred.await(before)
      const now = performance.now()
      yield* Metric.update(Metrics.claimSeconds, (now - began) / 1000)
      // a claim pipelined behind another began to run when that one was done
      claimSize?.claimed(now - Math.max(began, lastLandedAt))
      lastLandedAt = now
      yield* Metric.update(Metrics.running, running.size)
      // out of flight before it lands, so that the buffer's room is counted right when the slots fill
      countOff()
      backlog = claimed.length === limit
      land(claimed, began, false)
      startReady()
    }).pipe(
      Effect.onExit((exit) =>
        Effect.sync(() => {
          countOff()
          // the claim may have committed all the same: the next look looks for what it took
          if (Exit.isFailure(exit)) strayLookDue = true
          Deferred.doneUnsafe(landed, Exit.void)
          if (lastLanding === landed) lastLanding = undefined
          if (wokenInFlight) {
            wokenInFlight = false
            Queue.offerUnsafe(wake, undefined)
          }
        })
      ),
      claimOrHandBack.withPermits(1),
      Effect.uninterruptible
    )
  }

  /** A wake-up that finds claims in flight and sends none is taken up again when one lands. */
  const wakeOnLanding = () => {
    wokenInFlight = true
  }

  const claimOnce = Effect.gen(function* () {
    refillAsked = false
    if (claimError !== undefined) {
      const error = claimError
      claimError = undefined
      return yield* Effect.fail(error)
    }
    if (!accepting || handBackWaiting) return
    if (claimsInFlight >= depth) return wakeOnLanding()
    // with claims pipelined there may be no moment without one in flight for the look loop's stray look:
    // the claims hold off until it ran
    if (depth > 1 && strayLookPending()) {
      if (claimsInFlight > 0) return wakeOnLanding()
      yield* strayLook
    }
    // checked before `claimLimited` too, which would cost a round trip for nothing
    if (claimsInFlight > 0 && roomLeft() < pipelinedClaimMin()) return wakeOnLanding()
    yield* claimLimited.pipe(
      Effect.tapError(() =>
        Effect.sync(() => {
          strayLookDue = true
        })
      ),
      claimOrHandBack.withPermits(1),
      Effect.uninterruptible
    )
    const limit = roomLeft()
    if (claimsInFlight > 0 && limit < pipelinedClaimMin()) return wakeOnLanding()
    if (limit <= 0) {
      // a wake-up with no room: a job was announced (or the poll is due), so the next slot that frees asks
      // for a claim, as after a full one (else, the last claim having come back short, it waited for the poll)
      backlog = true
      return startReady()
    }
    // counted in flight and sent (or, one at a time, landed) without a break
    yield* Effect.uninterruptible(
      Effect.suspend(() => {
        claimsInFlight++
        roomInFlight += limit
        const before = lastLanding
        const landed = Deferred.makeUnsafe<void>()
        lastLanding = landed
        const claim = claimAndLand(limit, landed, before)
        if (depth === 1) return claim
        // sent while this fiber goes on to wait for the next wake-up; a failure fails the fetch loop's next turn
        return FiberSet.run(
          claims,
          claim.pipe(
            Effect.catch((error) =>
              Effect.sync(() => {
                claimError = error
                Queue.offerUnsafe(wake, undefined)
              })
            )
          )
        ).pipe(Effect.asVoid)
      })
    )
  })

  /**
   * Gives the buffered (claimed, not started) jobs that `which` picks back to the queue, their attempt
   * refunded; answers how many the database took back. A job stopped while buffered already left `unstarted`.
   */
  const giveBack = (which: (job: ClaimedJob) => boolean, extra: ReadonlyArray<ClaimedJob> = []) =>
    Effect.gen(function* () {
      const jobs = [...extra, ...buffer.slice(next).filter((job) => unstarted.has(job.id) && which(job))]
      if (jobs.length === 0) return 0
      // out of `held` before the release is sent: a renewal meanwhile must not record them as started (were
      // the release to fail, their leases run out and the rescuer gives the attempt back)
      for (const job of jobs) {
        unstarted.delete(job.id)
        recording.delete(job.id)
        limitedIds.delete(job.id)
        held.delete(job.id)
        releasing.add(job.id)
      }
      const released = yield* repo
        .release(
          workerId,
          jobs.map((job) => job.id)
        )
        .pipe(
          Effect.catchCause((cause) =>
            Effect.as(
              Effect.logWarning(
                "releasing buffered jobs failed; the next look hands them back",
                Cause.pretty(cause)
              ),
              []
            ).pipe(Effect.tap(() => Effect.sync(() => jobs.forEach(abandon))))
          ),
          // released, or abandoned by now
          Effect.ensuring(
            Effect.sync(() => {
              for (const job of jobs) releasing.delete(job.id)
            })
          )
        )
      for (const job of jobs) metricsFor(job).released.add(1)
      return released.length
    })

  const steering = yield* Steering.make({
    workerId,
    // none of their own: this worker's row holds them
    leaseMs: null,
    queues: config.queues,
    refreshInterval: config.queueRefresh,
    repo: claimRepo,
    queueRepo,
    onPaused: (queues) =>
      // buffered jobs, and those waiting for their start to be recorded: neither has run
      giveBack(
        (job) => queues.has(job.queue),
        [...recording.values()].filter((job) => queues.has(job.queue))
      ).pipe(
        Effect.tap((n) =>
          n === 0
            ? Effect.void
            : Effect.logInfo(`released ${n} buffered jobs of paused ${[...queues].join(", ")}`)
        ),
        Effect.asVoid
      ),
    onChanged: Effect.andThen(
      Effect.sync(() => {
        limitedWanted = true
      }),
      signal
    )
  })

  // backing off afresh after each failure that follows a claim: retried around the whole loop, which never
  // succeeds, the backoff grew over a worker's life, to its 10 s cap after a dozen passing failures
  const claimBackingOff = claimOnce.pipe(
    Effect.tapError((error) => Effect.logWarning("claiming failed; backing off", error.message)),
    Effect.retry(decorrelatedJitter({ base: "100 millis", cap: "10 seconds" }))
  )
  const fetchLoop = Effect.gen(function* () {
    for (;;) {
      yield* claimBackingOff
      const woken = yield* Queue.take(wake).pipe(Effect.timeoutOption(wakeTimes.nextWaitMs()))
      // a poll or a timed wake-up (a rate limit's window reopening among them): look at limited queues too
      if (woken._tag === "None") limitedWanted = true
    }
  }).pipe(Effect.annotateLogs({ module: "WorkerPool", fiber: "fetch" }))

  /**
   * Hands back the strays (see `strayLookDue`) when no claim is in flight, so that every claim that
   * committed and was answered has landed in `held`; with a claim in flight it stays due rather than wait (a
   * claim of a limited queue may wait on its queue's lock): for the next look, or, with claims pipelined,
   * for `claimOnce`, which sends none while it is due. A job given up on but not handed back yet
   * (`abandoned`) is left to the abandon above, which says why it went back.
   */
  const strayLook = claimOrHandBack
    .withPermitsIfAvailable(depth)(
      Effect.suspend(() => repo.handBackStrays(workerId, [...held.keys(), ...releasing, ...abandoned])).pipe(
        Effect.tap(() =>
          Effect.sync(() => {
            strayLookDue = false
            nextStrayLook = performance.now() + leaseMs
          })
        )
      )
    )
    .pipe(
      Effect.flatMap((strays) =>
        Option.isSome(strays) && strays.value.length > 0
          ? Effect.logWarning(
              `handed ${strays.value.length} jobs back to the queue that a claim of this worker took without its answer reaching the worker`
            )
          : Effect.void
      ),
      // on its own: the look at the held jobs still runs
      Effect.catchCause((cause) => Effect.logWarning("looking for stray jobs failed", Cause.pretty(cause)))
    )

  /**
   * Looks at every held job (cancel asked? still ours?), which writes nothing but the start of the jobs
   * that started since the last look (once per attempt), and hands the abandoned jobs back first.
   */
  const lookLoop = Effect.gen(function* () {
    yield* Metric.update(Metrics.running, running.size)
    if (abandoned.size > 0) {
      handBackWaiting = true
      const back = yield* claimOrHandBack
        .withPermits(depth)(
          Effect.gen(function* () {
            const given = [...abandoned]
            // a job held again (claimed anew after a rescue) is not the one given up on; no claim runs meanwhile
            const ids = given.filter((id) => !held.has(id))
            const back = ids.length === 0 ? [] : yield* repo.abandon(workerId, ids)
            for (const id of given) abandoned.delete(id)
            return back
          })
        )
        .pipe(
          Effect.ensuring(
            Effect.sync(() => {
              handBackWaiting = false
              Queue.offerUnsafe(wake, undefined)
            })
          )
        )
      if (back.length > 0)
        yield* Effect.logWarning(`handed ${back.length} jobs this worker had given up on back to the queue`)
    }
    if (strayLookPending()) yield* strayLook
    const ids = [...held.keys()]
    if (ids.length === 0) return
    const states = yield* repo.renewLeases(
      workerId,
      ids.map((id) => ({ id, started: !unstarted.has(id) && !recording.has(id), due: false })),
      leaseMs
    )
    const stillHeld = new Set<string>(states.map((s) => s.id))
    yield* stopAll(
      states.filter((state) => state.cancelRequested).map((state) => state.id),
      "cancel"
    )
    // missing from the answer: rescued by another worker, so our copy must not run or settle
    yield* stopAll(
      ids.filter((id) => !stillHeld.has(id) && held.has(id)),
      "lease_lost"
    )
  }).pipe(
    Effect.catchCause((cause) => Effect.logWarning("looking at the held jobs failed", Cause.pretty(cause))),
    Effect.repeat(Schedule.spaced(config.renewInterval)),
    Effect.annotateLogs({ module: "WorkerPool", fiber: "lease-look" })
  )

  const watchMarginMs = heartbeat.watchMarginMs
  /**
   * Stops the jobs whose lease would run out within two looks, while heartbeats fail (the database is
   * unreachable; a hung heartbeat cannot hold this up, it runs apart), and at once those the row no longer
   * holds (a heartbeat found the lease had run out and began a new one): past its lease another worker may
   * run the job, and it counts no more against its queue's concurrency limit. Their settlement writes
   * nothing; the next look that reaches the database hands back those not rescued meanwhile.
   */
  const leaseWatch = Effect.gen(function* () {
    // two looks ahead: a job is stopped at least one look (and its interruption's time) before its lease ends
    // by attempt: an older attempt of a job claimed again after a rescue is not the one the new lease holds
    const expiring = leases
      .expiring(performance.now() + 2 * watchMarginMs, (job: ClaimedJob) => held.get(job.id) === job)
      .map((job) => job.id)
    if (expiring.length === 0) return
    yield* Effect.logWarning(
      `could not renew the leases of ${expiring.length} jobs before they ran out (this worker's heartbeat); stopping them`
    )
    yield* stopAll(expiring, "lease_lost")
  }).pipe(
    Effect.repeat(Schedule.spaced(Duration.millis(watchMarginMs))),
    Effect.annotateLogs({ module: "WorkerPool", fiber: "lease-watch" })
  )

  const servesQueue = (queue: string) => config.queues === undefined || config.queues.includes(queue)
  /** `queue` (jobs ready now) or `queue@<epoch ms>` (the earliest job that becomes ready later). */
  const onReady = (payload: string) => {
    if (payload === Notifier.queuesChanged) return Effect.andThen(steering.refresh, signal)
    const at = payload.lastIndexOf("@")
    const queue = at === -1 ? payload : payload.slice(0, at)
    if (!servesQueue(queue)) return Effect.void
    if (at !== -1) wakeTimes.add(Number(payload.slice(at + 1)))
    if (steering.isLimited(queue)) limitedWanted = true
    return Effect.andThen(steering.onReady(queue), signal)
  }

  const fetcher = yield* FiberHandle.make()
  yield* FiberHandle.run(fetcher, fetchLoop)
  yield* Effect.forkScoped(lookLoop)
  yield* Effect.forkScoped(leaseWatch)
  const follow = yield* Effect.serviceOption(EventsFollowed)
  if (Option.isSome(follow)) yield* Effect.forkScoped(followWatch(repo, follow.value))
  yield* Effect.forkScoped(
    Notifier.subscribe(Notifier.channels.ready, onReady, Effect.andThen(steering.refresh, signal))
  )
  // each stop forked: a handler slow to stop must not hold up the cancels that follow it
  yield* Effect.forkScoped(Notifier.subscribe(Notifier.channels.cancel, (id) => stopAll([id], "cancel")))

  // Shutdown: stop claiming and starting; give buffered jobs straight back; let running jobs finish within
  // the grace period, or until a stop now is asked for (a second signal); then interrupt the rest, which
  // `Settlement` releases.
  yield* Effect.addFinalizer(() =>
    Effect.gen(function* () {
      accepting = false
      yield* FiberHandle.clear(fetcher)
      // claims in flight land first, and their jobs go back with the rest of the buffer
      yield* FiberSet.awaitEmpty(claims)
      if (recorder !== undefined) yield* Fiber.interrupt(recorder)
      // a buffered job that was stopped left `unstarted` when it was settled; one whose start was being
      // recorded has not run either
      const released = yield* giveBack(() => true, [...recording.values()])
      buffer = []
      next = 0
      unstarted.clear()
      recording.clear()
      if (released > 0) yield* Effect.logInfo(`shutting down: released ${released} buffered jobs`)
      if (running.size === 0) return
      const ids = [...running.keys()].map((job) => job.id)
      const named =
        ids.length > 10 ? `${ids.slice(0, 10).join(", ")} and ${ids.length - 10} more` : ids.join(", ")
      yield* Effect.logInfo(
        `shutting down: waiting up to ${Duration.format(config.shutdownGrace)} for ${ids.length} running ` +
          `jobs (${named}); a second SIGINT or SIGTERM (Ctrl-C again) stops them now and releases them to the queue`
      )
      const outcome = yield* Fiber.awaitAll([...running.values()]).pipe(
        Effect.as("drained" as const),
        Effect.timeoutOrElse({
          duration: config.shutdownGrace,
          orElse: () => Effect.succeed("grace over" as const)
        }),
        Effect.raceFirst(Effect.as(stopNow, "stop now" as const))
      )
      if (outcome !== "drained") {
        yield* Effect.logWarning(`${outcome}: interrupting and releasing ${running.size} running jobs`)
        yield* Fiber.interruptAll([...running.values()])
      }
    }).pipe(Effect.annotateLogs({ module: "WorkerPool" }))
  )

  yield* Effect.logInfo(
    `worker ${workerId} started: concurrency ${concurrency}, prefetch ${claimSize === undefined ? prefetch : `auto (0-${prefetch})`}, ` +
      `claims in flight ${depth}, queues ${config.queues?.join(",") ?? "all"}`
  ).pipe(Effect.annotateLogs({ module: "WorkerPool" }))

  return {
    workerId,
    /** Ids of the jobs this worker holds now (buffered, running or completing). */
    running: Effect.sync(() => [...held.keys()]),
    /** Wakes the fetch fiber now (an in-process enqueue need not wait for NOTIFY). */
    wake: signal
  }
})

export class WorkerPool extends Context.Service<WorkerPool, Effect.Success<typeof make>>()(
  "jobq/WorkerPool"
) {
  /** Runs while the layer's scope is open; closing it drains and stops the pool. */
  static readonly layer = Layer.effect(WorkerPool, make)
}
