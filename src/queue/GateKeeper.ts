/**
 * Keeps one of the database's gates (migrations/0008_events.sql, `Notifications.hold`) open while this
 * process has users for it, and for `linger` after the last one leaves, so that a burst of short waits (or
 * a follower that reconnects) does not open and close it each time. Nobody using it: the gate closes and
 * the hot path pays (almost) nothing for notifications or events. A lost gate session is reopened, and
 * `onOpen` is told each time the gate (re)opens.
 */
import { Cause, Deferred, type Duration, Effect, Exit, Fiber, type Scope, Semaphore } from "effect"
import type { SqlError } from "effect/sql"
import { type Gate, type HeldGate, Notifications } from "../db/Notifications.ts"
import { decorrelatedJitter } from "./Retry.ts"

export interface GateKeeper {
  /** Opens the gate (if it is not) and keeps it open until the scope closes (then for `linger`). */
  readonly enter: Effect.Effect<void, SqlError.SqlError, Scope.Scope>
  /** Whether the gate is held now. */
  readonly isOpen: Effect.Effect<boolean>
}

export const make = (
  gate: Gate,
  linger: Duration.Input,
  onOpen: (held: HeldGate) => Effect.Effect<void>
): Effect.Effect<GateKeeper, never, Notifications | Scope.Scope> =>
  Effect.gen(function* () {
    const notifications = yield* Notifications
    const scope = yield* Effect.scope
    const lock = yield* Semaphore.make(1)
    let users = 0
    let keeper: Fiber.Fiber<void, SqlError.SqlError> | undefined
    let closing: Fiber.Fiber<void> | undefined

    /** Holds the gate until interrupted, reopening it when its session is lost; `opened` when first open. */
    const keep = (opened: Deferred.Deferred<void, SqlError.SqlError>) => {
      let first = true
      const once = Effect.scoped(
        Effect.gen(function* () {
          const held = yield* notifications.hold(gate)
          yield* onOpen(held)
          first = false
          yield* Deferred.succeed(opened, undefined)
          yield* held.lost
          yield* Effect.logWarning(`the ${gate} gate's session was lost; opening it again`)
        })
      )
      return once.pipe(
        Effect.tapError((error) =>
          first
            ? Deferred.fail(opened, error)
            : Effect.logWarning(`opening the ${gate} gate failed`, error.message)
        ),
        // the first failure is the caller's to see; later ones are retried
        Effect.retry({
          while: () => !first,
          schedule: decorrelatedJitter({ base: "100 millis", cap: "5 seconds" })
        }),
        Effect.forever,
        Effect.annotateLogs({ module: "GateKeeper", gate })
      )
    }

    let opened: Deferred.Deferred<void, SqlError.SqlError> | undefined

    /** Counts a user in and starts a keeper if none runs (or the last one ended); quick, under the lock. */
    const join = Effect.gen(function* () {
      if (closing !== undefined) {
        yield* Fiber.interrupt(closing)
        closing = undefined
      }
      users++
      if (keeper === undefined || keeper.pollUnsafe() !== undefined || opened === undefined) {
        opened = yield* Deferred.make<void, SqlError.SqlError>()
        keeper = yield* Effect.forkIn(keep(opened), scope)
      }
      return { opened, keeper }
    })
    const close = Effect.gen(function* () {
      if (users > 0 || keeper === undefined) return
      const held = keeper
      keeper = undefined
      yield* Fiber.interrupt(held)
    })

    const leave = lock.withPermits(1)(
      Effect.gen(function* () {
        users--
        if (users > 0) return
        closing = yield* Effect.forkIn(
          Effect.sleep(linger).pipe(
            Effect.andThen(
              lock.withPermits(1)(
                Effect.suspend(() => {
                  closing = undefined
                  return close
                })
              )
            )
          ),
          scope
        )
      })
    )

    return {
      // waiting for the gate to open is interruptible (a wait that ends meanwhile stops waiting); a keeper
      // that ends without opening it (its scope closed: shutdown) leaves the gate as it is
      enter: Effect.acquireRelease(lock.withPermits(1)(join), () => leave).pipe(
        Effect.flatMap(({ opened, keeper }) =>
          Effect.raceFirst(
            Deferred.await(opened),
            // failed: `opened` carries the error; interrupted: the gate stays as it is
            Effect.flatMap(Fiber.await(keeper), (exit) =>
              Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)
                ? Deferred.await(opened)
                : Effect.void
            )
          )
        )
      ),
      isOpen: Effect.sync(() => keeper !== undefined)
    }
  })
