import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import { SessionBackend, Testing } from "effect-session-backend"
import type { SessionEvent } from "effect-session-backend"
import { TestClock } from "effect/testing"

const script: Testing.Script = (prompt) =>
  prompt === "custom"
    ? [
      Testing.approval({
        prompt: "Deploy?",
        options: ["Allow once", "Deny"],
        timeout: "30 seconds",
        default: "Allow once"
      })
    ]
    : [Testing.approval({ prompt: `Run ${prompt}?`, timeout: "1 minute" })]

/** Waits for the next approval request of the session. */
const nextRequest = (sessions: SessionBackend.Service, id: string, after = 0) =>
  sessions.events(id, { after }).pipe(
    Stream.filter((event): event is SessionEvent.ApprovalRequired => event._tag === "approval:required"),
    Stream.runHead,
    Effect.map((head) => {
      if (head._tag === "None") throw new Error("no approval request")
      return head.value
    })
  )

describe("approvals", () => {
  it.effect("a request becomes an event and is answered once through its own session", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionBackend.SessionBackend
      const { sessionId } = yield* sessions.createSession()
      const other = yield* sessions.createSession()
      const turn = yield* sessions.sendMessage(sessionId, "rm -rf build").pipe(Effect.forkChild)
      const request = yield* nextRequest(sessions, sessionId)
      assert.strictEqual(request.prompt, "Run rm -rf build?")
      assert.deepStrictEqual(request.options, ["allow", "deny"])
      assert.strictEqual(request.default, "deny")
      assert.strictEqual(request.timeoutMillis, 60_000)
      assert.deepStrictEqual((yield* sessions.pendingApprovals(sessionId)).map((r) => r.requestId), [request.requestId])
      assert.isFalse(yield* sessions.resolveApproval(other.sessionId, request.requestId, "allow"), "another session")
      assert.isFalse(yield* sessions.resolveApproval(sessionId, "no-such-request", "allow"))
      assert.isTrue(yield* sessions.resolveApproval(sessionId, request.requestId, "allow"))
      assert.isFalse(yield* sessions.resolveApproval(sessionId, request.requestId, "deny"), "answered once")
      assert.strictEqual(yield* Fiber.join(turn), "approved:allow")
      assert.deepStrictEqual(yield* sessions.pendingApprovals(sessionId), [])
    }).pipe(Effect.provide(Testing.layer({ script }))))

  it.effect("at the time-out the default applies, and a late answer is refused", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionBackend.SessionBackend
      const { sessionId } = yield* sessions.createSession()
      const turn = yield* sessions.sendMessage(sessionId, "make").pipe(Effect.forkChild)
      const request = yield* nextRequest(sessions, sessionId)
      yield* TestClock.adjust("59 seconds")
      assert.isUndefined(turn.pollUnsafe())
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Fiber.join(turn), "denied:deny")
      assert.isFalse(yield* sessions.resolveApproval(sessionId, request.requestId, "allow"), "late answer")
      const denied = yield* sessions.events(sessionId, { after: request.seq }).pipe(Stream.runHead)
      assert.strictEqual(denied._tag === "Some" && denied.value._tag, "approval:denied")
      assert.strictEqual(
        denied._tag === "Some" && denied.value._tag === "approval:denied" && denied.value.reason,
        "timeout"
      )
    }).pipe(Effect.provide(Testing.layer({ script }))))

  it.effect("a default that allows applies at the time-out too", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionBackend.SessionBackend
      const { sessionId } = yield* sessions.createSession()
      const turn = yield* sessions.sendMessage(sessionId, "custom").pipe(Effect.forkChild)
      yield* nextRequest(sessions, sessionId)
      yield* TestClock.adjust("30 seconds")
      assert.strictEqual(yield* Fiber.join(turn), "approved:Allow once")
    }).pipe(Effect.provide(Testing.layer({ script }))))

  it.effect("only an explicit allow allows: anything else is a deny", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionBackend.SessionBackend
      const { sessionId } = yield* sessions.createSession()
      let after = 0
      for (
        const [choice, expected] of [
          ["deny", "denied:deny"],
          ["maybe", "denied:maybe"],
          ["ALLOW", "denied:ALLOW"],
          ["", "denied:"],
          ["allow", "approved:allow"]
        ] as const
      ) {
        const turn = yield* sessions.sendMessage(sessionId, "x").pipe(Effect.forkChild)
        const pending = yield* nextRequest(sessions, sessionId, after)
        after = pending.seq
        assert.isTrue(yield* sessions.resolveApproval(sessionId, pending.requestId, choice))
        assert.strictEqual(yield* Fiber.join(turn), expected, choice)
      }
    }).pipe(Effect.provide(Testing.layer({ script }))))

  it.effect("a request made while nobody listens is kept until answered", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionBackend.SessionBackend
      const { sessionId } = yield* sessions.createSession()
      const turn = yield* sessions.sendMessage(sessionId, "offline").pipe(Effect.forkChild)
      yield* TestClock.adjust("50 seconds")
      const request = yield* nextRequest(sessions, sessionId)
      assert.strictEqual(request.prompt, "Run offline?")
      assert.isTrue(yield* sessions.resolveApproval(sessionId, request.requestId, "allow"))
      assert.strictEqual(yield* Fiber.join(turn), "approved:allow")
    }).pipe(Effect.provide(Testing.layer({ script }))))
})
