import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Option, Ref, Stream } from "effect"
import { SessionBackend, Testing } from "effect-session-backend"
import type { SessionEvent } from "effect-session-backend"
import { TestClock } from "effect/testing"

/** The `_tag` of an exit's typed failure, or "Success". */
const outcome = <A, E extends { readonly _tag: string }>(exit: Exit.Exit<A, E>): string => {
  if (Exit.isSuccess(exit)) return "Success"
  const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
  return failure?._tag === "Fail" ? failure.error._tag : exit.cause.reasons.map((reason) => reason._tag).join(",")
}

const failure = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const reason = exit.cause.reasons.find((r) => r._tag === "Fail")
  if (reason?._tag !== "Fail") throw new Error(`expected a typed failure, got ${String(exit.cause)}`)
  return reason.error
}

const allEvents = (sessions: SessionBackend.Service, id: string) =>
  sessions.events(id, { after: 0 }).pipe(Stream.runCollect)

const tags = (events: ReadonlyArray<SessionEvent.SessionEvent>) => events.map((event) => event._tag)

describe("SessionBackend", () => {
  describe("actor", () => {
    it.effect("100 concurrent senders to one session: turns in arrival order, one reply each", () =>
      Effect.gen(function*() {
        const sessions = yield* SessionBackend.SessionBackend
        const { sessionId } = yield* sessions.createSession({ workingDir: "/tmp" })
        const texts = Array.from({ length: 100 }, (_, i) => `message ${i}`)
        const replies = yield* Effect.forEach(texts, (text) => sessions.sendMessage(sessionId, text), {
          concurrency: "unbounded"
        })
        assert.deepStrictEqual(replies, texts)
        yield* sessions.endSession(sessionId)
        const events = yield* allEvents(sessions, sessionId).pipe(Effect.flip)
        assert.strictEqual(events._tag, "SessionNotFound")
      }).pipe(Effect.provide(Testing.layer())))

    it.effect("turns never overlap: each runs alone, in order", () =>
      Effect.gen(function*() {
        const running = yield* Ref.make(0)
        const overlaps = yield* Ref.make(0)
        const log = yield* Ref.make<Array<string>>([])
        const script: Testing.Script = (prompt) => [
          Testing.effect(() =>
            Ref.getAndUpdate(running, (n) => n + 1).pipe(
              Effect.flatMap((before) => before > 0 ? Ref.update(overlaps, (n) => n + 1) : Effect.void)
            )
          ),
          Testing.sleep("10 millis"),
          Testing.effect(() => Ref.update(log, (entries) => [...entries, prompt])),
          Testing.effect(() => Ref.update(running, (n) => n - 1)),
          Testing.reply(prompt)
        ]
        yield* Effect.gen(function*() {
          const sessions = yield* SessionBackend.SessionBackend
          const { sessionId } = yield* sessions.createSession()
          const fiber = yield* Effect.forEach(["a", "b", "c"], (text) => sessions.sendMessage(sessionId, text), {
            concurrency: "unbounded"
          }).pipe(Effect.forkChild)
          yield* TestClock.adjust("30 millis")
          assert.deepStrictEqual(yield* Fiber.join(fiber), ["a", "b", "c"])
        }).pipe(Effect.provide(Testing.layer({ script })))
        assert.deepStrictEqual(yield* Ref.get(log), ["a", "b", "c"])
        assert.strictEqual(yield* Ref.get(overlaps), 0)
      }))

    it.effect("a full mailbox fails the sender with MailboxFull and loses nothing else", () =>
      Effect.gen(function*() {
        const gate = yield* Deferred.make<void>()
        const script: Testing.Script = (prompt) =>
          prompt === "first"
            ? [Testing.awaitDeferred(gate), Testing.reply(prompt)]
            : Testing.echo(prompt, undefined as never)
        yield* Effect.gen(function*() {
          const sessions = yield* SessionBackend.SessionBackend
          const { sessionId } = yield* sessions.createSession()
          const first = yield* sessions.sendMessage(sessionId, "first").pipe(Effect.forkChild)
          yield* Effect.yieldNow
          const queued = yield* Effect.forEach(["q1", "q2"], (text) =>
            sessions.sendMessage(sessionId, text).pipe(Effect.forkChild))
          yield* Effect.yieldNow
          const full = yield* sessions.sendMessage(sessionId, "overflow").pipe(Effect.flip)
          assert.strictEqual(full._tag, "MailboxFull")
          assert.strictEqual(full._tag === "MailboxFull" && full.capacity, 2)
          yield* Deferred.succeed(gate, undefined)
          assert.strictEqual(yield* Fiber.join(first), "first")
          assert.deepStrictEqual(yield* Fiber.joinAll(queued), ["q1", "q2"])
          assert.strictEqual(yield* sessions.sendMessage(sessionId, "after"), "after")
        }).pipe(Effect.provide(Testing.layer({ script, backend: { mailboxCapacity: 2 } })))
      }))

    it.effect("a sender that goes away does not cancel its turn", () =>
      Effect.gen(function*() {
        const sessions = yield* SessionBackend.SessionBackend
        const { sessionId } = yield* sessions.createSession()
        const sender = yield* sessions.sendMessage(sessionId, "slow").pipe(Effect.forkChild)
        yield* Effect.yieldNow
        yield* Fiber.interrupt(sender)
        yield* TestClock.adjust("1 second")
        const events = yield* sessions.events(sessionId, { after: 0 }).pipe(
          Stream.takeUntil((event) => event._tag === "orchestrator:complete"),
          Stream.runCollect
        )
        const complete = events.find((event) => event._tag === "prompt:complete")
        assert.strictEqual(complete?._tag === "prompt:complete" && complete.response, "done slow")
      }).pipe(
        Effect.provide(
          Testing.layer({ script: (prompt) => [Testing.sleep("1 second"), Testing.reply(`done ${prompt}`)] })
        )
      ))

    it.effect("bad ids and unknown ids fail with typed errors", () =>
      Effect.gen(function*() {
        const sessions = yield* SessionBackend.SessionBackend
        for (const bad of ["../etc", "a/b", "a\\b", "nul\u0000", "x".repeat(129), ""]) {
          const error = yield* sessions.sendMessage(bad, "hi").pipe(Effect.flip)
          assert.strictEqual(error._tag, "InvalidSessionId", bad)
        }
        const unknown = yield* sessions.sendMessage("no-such-session", "hi").pipe(Effect.flip)
        assert.strictEqual(unknown._tag, "SessionNotFound")
        const relative = yield* sessions.createSession({ workingDir: "relative/dir" }).pipe(Effect.flip)
        assert.strictEqual(relative._tag, "InvalidWorkingDir")
        const bundle = yield* sessions.createSession({ bundle: "missing" }).pipe(Effect.flip)
        assert.strictEqual(bundle._tag, "BundleLoadError")
        assert.deepStrictEqual(yield* sessions.listActiveSessions, [])
      }).pipe(Effect.provide(Testing.layer())))

    it.effect("session info: project id, home expansion, live sessions only", () =>
      Effect.gen(function*() {
        const sessions = yield* SessionBackend.SessionBackend
        const info = yield* sessions.createSession({ workingDir: "~/work/app", app: "web", description: "d" })
        assert.strictEqual(info.workingDir, "/home/tester/work/app")
        assert.strictEqual(info.projectId, "-home-tester-work-app")
        assert.strictEqual(info.bundle, "scripted")
        assert.deepStrictEqual(
          Option.map(yield* sessions.getSessionInfo(info.sessionId), (i) => i.app),
          Option.some("web")
        )
        assert.strictEqual((yield* sessions.listActiveSessions).length, 1)
        yield* sessions.endSession(info.sessionId)
        assert.isTrue(Option.isNone(yield* sessions.getSessionInfo(info.sessionId)))
        assert.strictEqual((yield* sessions.listActiveSessions).length, 0)
      }).pipe(Effect.provide(Testing.layer({ backend: { homeDirectory: "/home/tester" } }))))
  })

  describe("cancel", () => {
    it.effect("immediate cancel interrupts a turn that would block forever; the sender gets TurnCancelled", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const script: Testing.Script = (prompt) =>
          prompt === "block"
            ? [Testing.effect(() => Deferred.succeed(started, undefined).pipe(Effect.andThen(Effect.never)))]
            : [Testing.reply(prompt)]
        yield* Effect.gen(function*() {
          const sessions = yield* SessionBackend.SessionBackend
          const { sessionId } = yield* sessions.createSession()
          const blocked = yield* sessions.sendMessage(sessionId, "block").pipe(Effect.exit, Effect.forkChild)
          const queued = yield* sessions.sendMessage(sessionId, "next").pipe(Effect.forkChild)
          yield* Deferred.await(started)
          yield* sessions.cancelSession(sessionId, "immediate")
          // the regression of the origin: a cancel that is built but never run leaves the sender hanging
          const exit = yield* Fiber.join(blocked)
          const error = failure(exit)
          assert.strictEqual(error._tag, "TurnCancelled")
          assert.strictEqual(error._tag === "TurnCancelled" && error.level, "immediate")
          assert.strictEqual(yield* Fiber.join(queued), "next")
          const events = yield* sessions.events(sessionId, { after: 0 }).pipe(Stream.take(8), Stream.runCollect)
          assert.deepStrictEqual(tags(events), [
            "session:start",
            "prompt:submit",
            "cancel:requested",
            "cancel:completed",
            "orchestrator:complete",
            "prompt:submit",
            "prompt:complete",
            "orchestrator:complete"
          ])
        }).pipe(Effect.provide(Testing.layer({ script })))
      }))

    it.effect("cancelSession(immediate) returns only after the turn has stopped", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        yield* Effect.gen(function*() {
          const sessions = yield* SessionBackend.SessionBackend
          const { sessionId } = yield* sessions.createSession()
          const blocked = yield* sessions.sendMessage(sessionId, "block").pipe(Effect.exit, Effect.forkChild)
          yield* Deferred.await(started)
          yield* sessions.cancelSession(sessionId, "immediate")
          yield* Effect.yieldNow
          const polled = blocked.pollUnsafe()
          assert.isDefined(polled, "the sender still waits after an immediate cancel returned")
          if (polled !== undefined && Exit.isSuccess(polled)) assert.strictEqual(outcome(polled.value), "TurnCancelled")
          else assert.fail("the sender fiber itself failed")
        }).pipe(Effect.provide(Testing.layer({
          script: () => [Testing.effect(() => Deferred.succeed(started, undefined).pipe(Effect.andThen(Effect.never)))]
        })))
      }))

    it.effect("graceful cancel lets the current step finish and stops before the next", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const gate = yield* Deferred.make<void>()
        const steps = yield* Ref.make<Array<string>>([])
        const script: Testing.Script = (prompt) =>
          prompt === "two steps"
            ? [
              Testing.effect(() => Deferred.succeed(started, undefined).pipe(Effect.andThen(Deferred.await(gate)))),
              Testing.effect(() => Ref.update(steps, (s) => [...s, "first step done"])),
              Testing.effect(() => Ref.update(steps, (s) => [...s, "second step ran"])),
              Testing.reply("finished")
            ]
            : [
              Testing.sleep("1 second"),
              Testing.effect(() => Ref.update(steps, (s) => [...s, prompt])),
              Testing.reply(prompt)
            ]
        yield* Effect.gen(function*() {
          const sessions = yield* SessionBackend.SessionBackend
          const { sessionId } = yield* sessions.createSession()
          const turn = yield* sessions.sendMessage(sessionId, "two steps").pipe(Effect.exit, Effect.forkChild)
          yield* Deferred.await(started)
          yield* sessions.cancelSession(sessionId, "graceful")
          yield* Effect.yieldNow
          assert.isUndefined(turn.pollUnsafe(), "graceful cancel must not interrupt the running step")
          yield* Deferred.succeed(gate, undefined)
          const error = failure(yield* Fiber.join(turn))
          assert.strictEqual(error._tag === "TurnCancelled" && error.level, "graceful")
          assert.deepStrictEqual(yield* Ref.get(steps), [])
          // cancel state is reset per turn: the next multi-step turn runs to its end
          const next = yield* sessions.sendMessage(sessionId, "next").pipe(Effect.forkChild)
          yield* TestClock.adjust("1 second")
          assert.strictEqual(yield* Fiber.join(next), "next")
          assert.deepStrictEqual(yield* Ref.get(steps), ["next"])
        }).pipe(Effect.provide(Testing.layer({ script })))
      }))

    it.effect("a second cancel escalates graceful to immediate", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        yield* Effect.gen(function*() {
          const sessions = yield* SessionBackend.SessionBackend
          const { sessionId } = yield* sessions.createSession()
          const turn = yield* sessions.sendMessage(sessionId, "x").pipe(Effect.exit, Effect.forkChild)
          yield* Deferred.await(started)
          yield* sessions.cancelSession(sessionId)
          yield* Effect.yieldNow
          assert.isUndefined(turn.pollUnsafe())
          yield* sessions.cancelSession(sessionId)
          const error = failure(yield* Fiber.join(turn))
          assert.strictEqual(error._tag === "TurnCancelled" && error.level, "immediate")
          const events = yield* sessions.events(sessionId, { after: 0 }).pipe(
            Stream.filter((event) => event._tag === "cancel:requested"),
            Stream.take(2),
            Stream.runCollect
          )
          assert.deepStrictEqual(events.map((e) => e._tag === "cancel:requested" && e.level), ["graceful", "immediate"])
        }).pipe(Effect.provide(Testing.layer({
          script: () => [Testing.effect(() => Deferred.succeed(started, undefined).pipe(Effect.andThen(Effect.never)))]
        })))
      }))

    it.effect("cancel of an idle or unknown session is a no-op", () =>
      Effect.gen(function*() {
        const sessions = yield* SessionBackend.SessionBackend
        const { sessionId } = yield* sessions.createSession()
        yield* sessions.cancelSession("unknown-id", "immediate")
        yield* sessions.cancelSession("../bad", "immediate")
        yield* sessions.cancelSession(sessionId, "graceful")
        yield* sessions.cancelSession(sessionId, "immediate")
        assert.strictEqual(yield* sessions.sendMessage(sessionId, "still fine"), "still fine")
      }).pipe(Effect.provide(Testing.layer({ script: (prompt) => [Testing.reply("ignored"), Testing.reply(prompt)] }))))
  })
})
