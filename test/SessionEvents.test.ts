import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Equal, Exit, Fiber, Schema, Stream } from "effect"
import { SessionBackend, SessionEvent, Testing } from "effect-session-backend"
import { TestClock } from "effect/testing"

const seqs = (events: ReadonlyArray<SessionEvent.SessionEvent>) => events.map((event) => event.seq)
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

const streaming: Testing.Script = (prompt) =>
  prompt === "fail"
    ? [Testing.stream(["partial"]), Testing.fail(new Error("engine broke"))]
    : [Testing.stream(["Hel", "lo"], { every: "100 millis" }), Testing.toolCall("read_file", { path: "a.txt" })]

describe("SessionBackend events", () => {
  it.effect("a subscriber that reconnects with its last sequence number gets exactly what it missed", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionBackend.SessionBackend
      const { sessionId } = yield* sessions.createSession()
      yield* sessions.sendMessage(sessionId, "a")
      const first = yield* sessions.events(sessionId, { after: 0 }).pipe(Stream.take(4), Stream.runCollect)
      assert.deepStrictEqual(seqs(first), [1, 2, 3, 4])
      // the connection drops; the session goes on
      yield* Effect.forEach(["b", "c"], (text) => sessions.sendMessage(sessionId, text), { discard: true })
      const missed = yield* sessions.events(sessionId, { after: 4 }).pipe(
        Stream.takeUntil((event) => event._tag === "orchestrator:complete" && event.turn === 3),
        Stream.runCollect
      )
      assert.deepStrictEqual(seqs(missed), range(5, 10), "no gap, no duplicate")
      assert.deepStrictEqual(missed.flatMap((event) => event._tag === "prompt:submit" ? [event.prompt] : []), [
        "b",
        "c"
      ])
    }).pipe(Effect.provide(Testing.layer())))

  it.effect("a live subscriber and a replaying one see the same sequence", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionBackend.SessionBackend
      const { sessionId } = yield* sessions.createSession()
      const live = yield* sessions.events(sessionId).pipe(Stream.take(6), Stream.runCollect, Effect.forkChild)
      yield* Effect.yieldNow
      yield* sessions.sendMessage(sessionId, "one")
      yield* sessions.sendMessage(sessionId, "two")
      const replayed = yield* sessions.events(sessionId, { after: 1 }).pipe(Stream.take(6), Stream.runCollect)
      const liveEvents = yield* Fiber.join(live)
      assert.deepStrictEqual(seqs(liveEvents), range(2, 7))
      assert.deepStrictEqual(liveEvents, replayed)
    }).pipe(Effect.provide(Testing.layer())))

  it.effect("asking for events older than the replay window is a typed error, never a silent gap", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionBackend.SessionBackend
      const { sessionId } = yield* sessions.createSession()
      yield* Effect.forEach(range(1, 10), (i) => sessions.sendMessage(sessionId, `m${i}`), { discard: true })
      // 31 events were published, the window keeps the last 8 (#24 … #31)
      const gone = yield* sessions.events(sessionId, { after: 10 }).pipe(Stream.runCollect, Effect.flip)
      assert.strictEqual(gone._tag, "EventsUnavailable")
      assert.strictEqual(gone._tag === "EventsUnavailable" && gone.oldestAvailable, 24)
      const kept = yield* sessions.events(sessionId, { after: 23 }).pipe(Stream.take(8), Stream.runCollect)
      assert.deepStrictEqual(seqs(kept), range(24, 31))
    }).pipe(Effect.provide(Testing.layer({ backend: { replayWindow: 8 } }))))

  it.effect("published events are real instances of their schema classes", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionBackend.SessionBackend
      const { sessionId } = yield* sessions.createSession({ workingDir: "/srv" })
      const turn = yield* sessions.execute(sessionId, "hi").pipe(Stream.runCollect, Effect.forkChild)
      yield* TestClock.adjust("1 second")
      const events = yield* Fiber.join(turn)
      const encode = Schema.encodeSync(SessionEvent.SessionEvent)
      const decode = Schema.decodeSync(SessionEvent.SessionEvent)
      assert.isTrue(events.length > 5)
      for (const event of events) {
        assert.isTrue(Schema.is(SessionEvent.SessionEvent)(event), event._tag)
        const viaNew = decode(encode(event))
        assert.strictEqual(Object.getPrototypeOf(event), Object.getPrototypeOf(viaNew), event._tag)
        assert.isTrue(Equal.equals(event, viaNew), event._tag)
      }
    }).pipe(Effect.provide(Testing.layer({ script: streaming }))))

  it.effect("a cursor this session never handed out is refused, not waited on", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionBackend.SessionBackend
      const { sessionId } = yield* sessions.createSession()
      for (const after of [2, -1, 0.5]) {
        const error = yield* sessions.events(sessionId, { after }).pipe(Stream.runCollect, Effect.flip)
        assert.strictEqual(error._tag, "EventsUnavailable", String(after))
      }
      const all = yield* sessions.events(sessionId, { after: 0 }).pipe(Stream.take(1), Stream.runCollect)
      assert.deepStrictEqual(seqs(all), [1])
    }).pipe(Effect.provide(Testing.layer())))

  it.effect("a slow subscriber never blocks the session; when it falls out of the window it is told", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionBackend.SessionBackend
      const { sessionId } = yield* sessions.createSession()
      const gate = yield* Deferred.make<void>()
      // a subscriber that takes one event, then stalls until the gate opens
      const slow = yield* sessions.events(sessionId, { after: 0 }).pipe(
        Stream.mapEffect((event) =>
          event.seq === 1 ? Deferred.await(gate).pipe(Effect.as(event)) : Effect.succeed(event)
        ),
        Stream.runCollect,
        Effect.exit,
        Effect.forkChild
      )
      yield* Effect.yieldNow
      const replies = yield* Effect.forEach(range(1, 100), (i) => sessions.sendMessage(sessionId, `m${i}`))
      assert.strictEqual(replies.length, 100)
      yield* Deferred.succeed(gate, undefined)
      const exit = yield* Fiber.join(slow)
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) {
        const reason = exit.cause.reasons[0]
        assert.strictEqual(reason._tag === "Fail" && reason.error._tag, "EventsUnavailable")
      }
    }).pipe(Effect.provide(Testing.layer({ backend: { replayWindow: 16 } }))))

  it.effect("execute streams one turn's events and ends with it", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionBackend.SessionBackend
      const { sessionId } = yield* sessions.createSession()
      const earlier = yield* sessions.sendMessage(sessionId, "earlier").pipe(Effect.forkChild)
      const turn = yield* sessions.execute(sessionId, "hi").pipe(Stream.runCollect, Effect.forkChild)
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(earlier)
      const events = yield* Fiber.join(turn)
      assert.deepStrictEqual(events.map((event) => event._tag), [
        "prompt:submit",
        "content_block:start",
        "content_block:delta",
        "content_block:delta",
        "content_block:end",
        "tool:pre",
        "tool:post",
        "prompt:complete",
        "orchestrator:complete"
      ])
      assert.isTrue(events.every((event) => !("turn" in event) || event.turn === 2))
      const deltas = events.flatMap((event) => event._tag === "content_block:delta" ? [event.delta] : [])
      assert.deepStrictEqual(deltas, ["Hel", "lo"])
      assert.strictEqual(events[1].timestamp, 100 * 2, "timestamps come from the Clock")
    }).pipe(Effect.provide(Testing.layer({ script: streaming }))))

  it.effect("execute fails with the turn's error after its events", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionBackend.SessionBackend
      const { sessionId } = yield* sessions.createSession()
      const seen: Array<string> = []
      const error = yield* sessions.execute(sessionId, "fail").pipe(
        Stream.runForEach((event) => Effect.sync(() => seen.push(event._tag))),
        Effect.flip
      )
      assert.strictEqual(error._tag, "TurnFailed")
      assert.strictEqual(error._tag === "TurnFailed" && String(error.cause), "Error: engine broke")
      assert.deepStrictEqual(seen.slice(-1), ["orchestrator:complete"])
      // the session goes on after a failed turn
      const next = yield* sessions.sendMessage(sessionId, "after").pipe(Effect.forkChild)
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Fiber.join(next), "Hello")
    }).pipe(Effect.provide(Testing.layer({ script: streaming }))))

  it.effect("execute of an unknown session fails like sendMessage", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionBackend.SessionBackend
      const error = yield* sessions.execute("nobody", "hi").pipe(Stream.runCollect, Effect.flip)
      assert.strictEqual(error._tag, "SessionNotFound")
    }).pipe(Effect.provide(Testing.layer())))
})
