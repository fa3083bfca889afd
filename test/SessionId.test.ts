import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { SessionId } from "effect-session-backend"
import * as fc from "fast-check"

describe("SessionId", () => {
  it.effect("accepts ordinary ids, including the origin's UUIDs", () =>
    Effect.gen(function*() {
      for (const id of ["a", "0f8fad5b-d9cb-469f-a165-70867728950e", "web_session.1", "x".repeat(128)]) {
        assert.strictEqual(yield* SessionId.decode(id), id)
      }
      const made = yield* SessionId.make
      assert.isTrue(SessionId.isSessionId(made))
    }))

  it.effect("refuses every id that could leave its folder, naming the rule", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [string, RegExp]> = [
        ["", /empty/],
        ["x".repeat(129), /at most 128/],
        ["../../etc/passwd", /'\/'/],
        ["..", /'\.\.'/],
        ["a..b", /'\.\.'/],
        [".", /'\.'/],
        ["a\\b", /'\/'/],
        ["nul\u0000byte", /control/],
        ["new\nline", /control/],
        ["del\u007f", /control/]
      ]
      for (const [input, rule] of cases) {
        const error = yield* SessionId.decode(input).pipe(Effect.flip)
        assert.strictEqual(error._tag, "InvalidSessionId")
        assert.match(error.detail, rule, JSON.stringify(input))
        assert.isFalse(SessionId.isSessionId(input))
      }
    }))

  it("the schema and decode agree, and no accepted id is a path escape", () => {
    const decodeSchema = Schema.decodeUnknownExit(SessionId.SessionId)
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 140 }), fc.constantFrom("..", ".", "a/..", "\\", "ok")), (input) => {
        const viaSchema = decodeSchema(input)._tag === "Success"
        const viaDecode = Effect.runSync(Effect.result(SessionId.decode(input)))._tag === "Success"
        assert.strictEqual(viaSchema, viaDecode)
        if (viaSchema) {
          assert.isFalse(input.includes("/") || input.includes("\\") || input.includes("..") || input === ".")
          assert.isTrue(input.length >= 1 && input.length <= 128)
        }
      })
    )
  })
})
