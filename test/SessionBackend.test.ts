import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Option, Ref, Stream } from "effect"
import { TestClock } from "effect/testing"
import { SessionBackend, SessionEvent, Testing } from "effect-session-backend"

const backend = (options: Parameters<typeof Testing.layer>[0] = {}) => Testing.layer(options)

const failureTag = <A, E extends { readonly _tag: string }>(exit: Exit.Exit<A, E>): string => {
  if (Exit.isSuccess(exit)) return "Success"
  const error = exit.cause.reasons.find((reason) => reason._tag === "Fail")
  return error !== undefined && error._tag === "Fail" ? error.error._tag : exit.cause.reasons.map((r) => r._tag).join(",")
}

describe("SessionBackend actor", () => {
  it.effect("answers each sender in order, one turn at a time", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionBackend.SessionBackend
      const info = yield* sessions.createSession({ workingDir: "/tmp" })
      const replies = yield* Effect.forEach(
        Array.from({ length: 100 }, (_, i) => `message ${i}`),
        (text) => sessions.sendMessage(info.sessionId, text),
        { concurrency: 3 }
      )
      assert.deepStrictEqual(replies, Array.from({ length: 100 }, (_, i) => `message ${i}`))
    }).pipe(Effect.provide(backend())))
})
