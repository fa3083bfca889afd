import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Ref, Stream } from "effect"
import { BundleLoader, CwdGuard, SessionBackend, Testing, TranscriptStore } from "effect-session-backend"
import type { SessionError } from "effect-session-backend"
import { TestClock } from "effect/testing"

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const reason = exit.cause.reasons.find((r) => r._tag === "Fail")
  if (reason?._tag !== "Fail") throw new Error(`expected a typed failure, got ${String(exit.cause)}`)
  return reason.error
}

/** A script whose "hang" turn never ends, "slow" turn sleeps 2 s, others echo. */
const script: Testing.Script = (prompt) =>
  prompt === "hang"
    ? [Testing.effect(() => Effect.never)]
    : prompt === "slow"
    ? [Testing.sleep("2 seconds"), Testing.reply("slow done")]
    : [Testing.reply(prompt)]

describe("SessionBackend end and stop", () => {
  it.effect("endSession tombstones first, drains a hanging turn for 5 s of the clock, then interrupts it", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionBackend.SessionBackend
      const { sessionId } = yield* sessions.createSession()
      const events = yield* sessions.events(sessionId, { after: 0 }).pipe(Stream.runCollect, Effect.forkChild)
      const running = yield* sessions.sendMessage(sessionId, "hang").pipe(Effect.exit, Effect.forkChild)
      const queued = yield* sessions.sendMessage(sessionId, "queued").pipe(Effect.exit, Effect.forkChild)
      yield* Effect.yieldNow
      const ending = yield* sessions.endSession(sessionId).pipe(Effect.forkChild)
      yield* Effect.yieldNow
      // tombstone first: new messages are refused while the turn drains
      const refused = yield* sessions.sendMessage(sessionId, "late").pipe(Effect.flip)
      assert.strictEqual(refused._tag, "SessionEnded")
      // queued replies fail at once, they do not wait for the drain
      assert.strictEqual(failureOf(yield* Fiber.join(queued))._tag, "SessionEnded")
      yield* TestClock.adjust("4999 millis")
      assert.isUndefined(ending.pollUnsafe(), "end must wait up to 5 s for the running turn")
      assert.isUndefined(running.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(ending)
      const error = failureOf(yield* Fiber.join(running))
      assert.strictEqual(error._tag === "SessionEnded" && error.reason, "ended")
      const seen = yield* Fiber.join(events)
      assert.deepStrictEqual(seen.map((e) => e._tag), [
        "session:start",
        "prompt:submit",
        "orchestrator:complete",
        "session:end"
      ])
      // an ended session never comes back
      const after = yield* sessions.sendMessage(sessionId, "again").pipe(Effect.flip)
      assert.strictEqual(after._tag === "SessionEnded" && after.reason, "ended")
      assert.deepStrictEqual(yield* sessions.listActiveSessions, [])
    }).pipe(Effect.provide(Testing.layer({ script }))))

  it.effect("endSession lets a turn that finishes within the bound answer", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionBackend.SessionBackend
      const { sessionId } = yield* sessions.createSession()
      const running = yield* sessions.sendMessage(sessionId, "slow").pipe(Effect.forkChild)
      yield* Effect.yieldNow
      const ending = yield* sessions.endSession(sessionId).pipe(Effect.forkChild)
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual(yield* Fiber.join(running), "slow done")
      yield* Fiber.join(ending)
    }).pipe(Effect.provide(Testing.layer({ script }))))

  it.effect("concurrent endSession calls clean up exactly once and all return", () =>
    Effect.gen(function*() {
      const cleanups = yield* Ref.make(0)
      const bundle: BundleLoader.PreparedBundle = {
        name: "counting",
        version: "1",
        createSession: () =>
          Effect.addFinalizer(() => Ref.update(cleanups, (n) => n + 1)).pipe(Effect.as(Testing.engine(script)))
      }
      yield* Effect.gen(function*() {
        const sessions = yield* SessionBackend.SessionBackend
        const { sessionId } = yield* sessions.createSession()
        const enders = yield* Effect.forEach([1, 2, 3], () => sessions.endSession(sessionId).pipe(Effect.forkChild))
        yield* Fiber.joinAll(enders)
        assert.strictEqual(yield* Ref.get(cleanups), 1)
        const gone = yield* sessions.events(sessionId).pipe(Stream.runCollect, Effect.flip)
        assert.strictEqual(gone._tag, "SessionNotFound")
        yield* sessions.endSession(sessionId)
        assert.strictEqual(yield* Ref.get(cleanups), 1)
      }).pipe(Effect.provide(
        SessionBackend.layer.pipe(
          Layer.provide([BundleLoader.layerBundles([bundle]), TranscriptStore.layerMemory(), CwdGuard.layer])
        )
      ))
    }))

  it.effect("a caller of endSession that goes away does not cut the end short", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionBackend.SessionBackend
      const { sessionId } = yield* sessions.createSession()
      const running = yield* sessions.sendMessage(sessionId, "hang").pipe(Effect.exit, Effect.forkChild)
      yield* Effect.yieldNow
      const ending = yield* sessions.endSession(sessionId).pipe(Effect.forkChild)
      yield* Effect.yieldNow
      yield* Fiber.interrupt(ending)
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual(failureOf(yield* Fiber.join(running))._tag, "SessionEnded")
      assert.deepStrictEqual(yield* sessions.listActiveSessions, [])
    }).pipe(Effect.provide(Testing.layer({ script }))))

  it.effect("stop ends many busy sessions within 10 s of the clock", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionBackend.SessionBackend
      const ids = yield* Effect.forEach(Array.from({ length: 50 }), () => sessions.createSession())
      const replies = yield* Effect.forEach(ids, ({ sessionId }) =>
        Effect.forEach(["hang", "queued 1", "queued 2"], (text) =>
          sessions.sendMessage(sessionId, text).pipe(Effect.exit, Effect.forkChild)))
      const slow = yield* sessions.createSession()
      const slowReply = yield* sessions.sendMessage(slow.sessionId, "slow").pipe(Effect.forkChild)
      yield* Effect.yieldNow
      const stopping = yield* sessions.stop.pipe(Effect.forkChild)
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual(yield* Fiber.join(slowReply), "slow done", "a turn that ends within the bound answers")
      yield* TestClock.adjust("7999 millis")
      assert.isUndefined(stopping.pollUnsafe(), "stop waits up to 10 s")
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(stopping)
      for (const perSession of replies) {
        for (const reply of perSession) {
          const error = failureOf(yield* Fiber.join(reply))
          assert.strictEqual(error._tag === "SessionEnded" && error.reason, "stopped")
        }
      }
      assert.deepStrictEqual(yield* sessions.listActiveSessions, [])
    }).pipe(Effect.provide(Testing.layer({ script }))))

  it.effect("closing the layer stops the sessions: the stop is the layer's finalizer", () =>
    Effect.gen(function*() {
      const hung = yield* Deferred.make<Exit.Exit<string, SessionError.SendError>>()
      const closing = yield* Effect.gen(function*() {
        const sessions = yield* SessionBackend.SessionBackend
        const { sessionId } = yield* sessions.createSession()
        yield* sessions.sendMessage(sessionId, "hang").pipe(
          Effect.exit,
          Effect.flatMap((exit) => Deferred.succeed(hung, exit)),
          Effect.forkDetach
        )
        yield* Effect.yieldNow
      }).pipe(Effect.provide(Testing.layer({ script })), Effect.forkChild)
      yield* TestClock.adjust("10 seconds")
      yield* Fiber.join(closing)
      const error = failureOf(yield* Deferred.await(hung))
      assert.strictEqual(error._tag === "SessionEnded" && error.reason, "stopped")
    }))
})
