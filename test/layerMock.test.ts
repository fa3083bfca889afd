import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { SessionBackend } from "effect-session-backend"

describe("SessionBackend.layerMock", () => {
  it.effect("echoes replies and records the calls it ran, needing nothing", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionBackend.SessionBackend
      const { sessionId } = yield* sessions.createSession({ workingDir: "/srv/app", app: "test" })
      assert.strictEqual(yield* sessions.sendMessage(sessionId, "ping"), "ping")
      yield* sessions.cancelSession(sessionId, "immediate")
      assert.strictEqual((yield* sessions.listActiveSessions).length, 1)
      const calls = yield* (yield* SessionBackend.MockCalls).calls
      assert.deepStrictEqual(calls.map((call) => call.method), [
        "createSession",
        "sendMessage",
        "cancelSession",
        "listActiveSessions"
      ])
      assert.deepStrictEqual(calls[1].args, [sessionId, "ping"])
    }).pipe(Effect.provide(SessionBackend.layerMock)))
})
