import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as fc from "fast-check"
import {
  findOrphanedToolCalls,
  type Message,
  Message as MessageSchema,
  parseJsonl,
  repair,
  toJsonl,
  toolCallName
} from "../src/Transcript.ts"

// Lines as the origin's Python `json.dumps` writes them: spaces after separators, keys in insertion order.
const originLines = [
  `{"role": "user", "content": "list the files", "timestamp": "2025-01-01T00:00:00Z"}`,
  `{"role": "assistant", "content": null, "tool_calls": [{"id": "toolu_1", "tool": "bash", "arguments": {"command": "ls"}}], "thinking_block": {"type": "thinking", "thinking": "hm", "signature": "sig"}}`,
  `{"role": "tool", "tool_call_id": "toolu_1", "name": "bash", "content": "a.txt\\nb.txt", "metadata": {"duration_ms": 12}}`,
  `{"role": "assistant", "content": [{"type": "text", "text": "Two files."}, {"type": "thinking", "thinking": "done"}]}`
]

const user = (text: string): Message => ({ role: "user", content: text })
const assistant = (...calls: ReadonlyArray<readonly [id: string, tool: string]>): Message => ({
  role: "assistant",
  content: "",
  tool_calls: calls.map(([id, tool]) => ({ id, tool, arguments: {} }))
})
const result = (id: string, name = "bash"): Message => ({ role: "tool", tool_call_id: id, name, content: "ok" })

/** Every tool result has a call with its id in an earlier assistant message. */
const resultsFollowCalls = (messages: ReadonlyArray<Message>): boolean => {
  const called = new Set<string>()
  for (const message of messages) {
    if (message.role === "tool" && (message.tool_call_id === undefined || !called.has(message.tool_call_id))) {
      return false
    }
    for (const call of message.role === "assistant" ? message.tool_calls ?? [] : []) called.add(call.id)
  }
  return true
}

describe("Transcript", () => {
  describe("parseJsonl / toJsonl", () => {
    it.effect("round-trips the origin's format: content null, the `tool` key, unknown keys and their order", () =>
      Effect.gen(function*() {
        const parsed = yield* parseJsonl(originLines.join("\n") + "\n", "s1")
        assert.isFalse(parsed.tornLastLine)
        assert.strictEqual(parsed.messages.length, 4)
        assert.isNull(parsed.messages[1]!.content)
        assert.strictEqual(toolCallName(parsed.messages[1]!.tool_calls![0]!), "bash")
        assert.deepStrictEqual(parsed.messages[1]!["thinking_block"], {
          type: "thinking",
          thinking: "hm",
          signature: "sig"
        })
        const expected = originLines.map((line) => JSON.stringify(JSON.parse(line)) + "\n").join("")
        assert.strictEqual(toJsonl(parsed.messages), expected)
      }))

    it("the Message schema keeps unknown keys through decode and encode", () => {
      for (const line of originLines) {
        const json: unknown = JSON.parse(line)
        const decoded = Schema.decodeUnknownSync(MessageSchema)(json)
        assert.deepStrictEqual(Schema.encodeSync(MessageSchema)(decoded), json)
      }
    })

    it.effect("accepts OpenAI-shaped tool calls and keeps them as read", () =>
      Effect.gen(function*() {
        const line =
          `{"role":"assistant","content":"","tool_calls":[{"id":"call_9","type":"function","function":{"name":"grep","arguments":"{}"}}]}`
        const parsed = yield* parseJsonl(line + "\n", "s1")
        assert.strictEqual(toJsonl(parsed.messages), line + "\n")
        assert.strictEqual(toolCallName(parsed.messages[0]!.tool_calls![0]!), "grep")
        assert.deepStrictEqual(findOrphanedToolCalls(parsed.messages), [
          { messageIndex: 0, toolCallId: "call_9", tool: "grep" }
        ])
      }))

    it.effect("drops a torn last line and says so", () =>
      Effect.gen(function*() {
        const torn = originLines.slice(0, 2).join("\n") + "\n" + originLines[2]!.slice(0, 30)
        const parsed = yield* parseJsonl(torn, "s1")
        assert.isTrue(parsed.tornLastLine)
        assert.strictEqual(parsed.messages.length, 2)
        const withNewline = yield* parseJsonl(torn + "\n\n", "s1")
        assert.isTrue(withNewline.tornLastLine)
        assert.strictEqual(withNewline.messages.length, 2)
      }))

    it.effect("ignores blank lines and reads an empty transcript", () =>
      Effect.gen(function*() {
        const parsed = yield* parseJsonl("\n" + originLines[0] + "\r\n\n  \n" + originLines[3], "s1")
        assert.strictEqual(parsed.messages.length, 2)
        assert.isFalse(parsed.tornLastLine)
        assert.deepStrictEqual(yield* parseJsonl("", "s1"), { messages: [], tornLastLine: false })
        assert.strictEqual(toJsonl([]), "")
      }))

    it.effect("fails on invalid JSON before the last line, with its 1-based number", () =>
      Effect.gen(function*() {
        const text = [originLines[0], "", "{\"role\": \"user\", \"content\": ", originLines[3]].join("\n")
        const error = yield* parseJsonl(text, "s1").pipe(Effect.flip)
        assert.strictEqual(error._tag, "TranscriptCorrupt")
        assert.strictEqual(error.sessionId, "s1")
        assert.strictEqual(error.line, 3)
        assert.match(error.detail, /^invalid JSON/)
      }))

    it.effect("fails on valid JSON that is not a message, even on the last line", () =>
      Effect.gen(function*() {
        const middle = yield* parseJsonl(
          [originLines[0], `{"role": "robot", "content": "x"}`, originLines[1]].join("\n"),
          "s"
        )
          .pipe(Effect.flip)
        assert.strictEqual(middle.line, 2)
        assert.match(middle.detail, /^not a message: .*role/)
        const last = yield* parseJsonl(originLines[0] + "\n[1, 2]\n", "s").pipe(Effect.flip)
        assert.strictEqual(last.line, 2)
        assert.match(last.detail, /^not a message/)
        const badCall = yield* parseJsonl(`{"role": "assistant", "content": "", "tool_calls": [{"id": "x"}]}`, "s")
          .pipe(Effect.flip)
        assert.strictEqual(badCall.line, 1)
        assert.match(badCall.detail, /tool_calls/)
      }))
  })

  describe("findOrphanedToolCalls", () => {
    it("lists unanswered calls in order, counting results anywhere after the call", () => {
      const messages = [
        user("go"),
        assistant(["a", "bash"], ["b", "read"]),
        result("b"),
        user("more"),
        assistant(["c", "x"])
      ]
      assert.deepStrictEqual(findOrphanedToolCalls(messages), [
        { messageIndex: 1, toolCallId: "a", tool: "bash" },
        { messageIndex: 4, toolCallId: "c", tool: "x" }
      ])
      assert.deepStrictEqual(findOrphanedToolCalls([assistant(["a", "bash"]), user("wait"), result("a")]), [])
      assert.deepStrictEqual(findOrphanedToolCalls([result("a"), assistant(["a", "bash"])]), [
        { messageIndex: 1, toolCallId: "a", tool: "bash" }
      ])
    })
  })

  describe("repair", () => {
    it("inserts one result per orphan after its owner's existing results, in call order", () => {
      const owner = assistant(["a", "bash"], ["b", "read"], ["c", "write"])
      const messages = [user("go"), owner, result("b", "read"), user("next")]
      const repaired = repair(messages, "cancelled")
      assert.strictEqual(repaired.inserted, 2)
      assert.strictEqual(repaired.dropped, 0)
      const out = repaired.messages
      assert.strictEqual(out.length, 6)
      assert.strictEqual(out[1], owner)
      assert.strictEqual(out[2], messages[2])
      assert.deepStrictEqual(out.slice(3, 5).map((m) => [m.role, m.tool_call_id, m.name]), [
        ["tool", "a", "bash"],
        ["tool", "c", "write"]
      ])
      assert.match(String(out[3]!.content), /^Error: .*bash.*cancelled/)
      assert.strictEqual(out[5], messages[3])
      assert.deepStrictEqual(findOrphanedToolCalls(out), [])
    })

    it("says a restart interrupted the call", () => {
      const out = repair([assistant(["a", "bash"])], "interrupted by restart").messages
      assert.deepStrictEqual(out[1]!.tool_call_id, "a")
      assert.match(String(out[1]!.content), /interrupted by a restart/)
    })

    it("drops tool results whose call is missing or only comes later", () => {
      const messages = [
        user("go"),
        result("ghost"),
        assistant(["a", "bash"]),
        result("a"),
        result("later"),
        assistant([
          "later",
          "bash"
        ]),
        result("later")
      ]
      const repaired = repair(messages, "cancelled")
      assert.strictEqual(repaired.dropped, 2)
      assert.strictEqual(repaired.inserted, 0)
      assert.deepStrictEqual(repaired.messages, [messages[0], messages[2], messages[3], messages[5], messages[6]])
    })

    it("returns a valid transcript as it is", () => {
      const messages = [
        user("go"),
        assistant(["a", "bash"]),
        result("a"),
        { role: "assistant", content: "done" } as const
      ]
      const repaired = repair(messages, "cancelled")
      assert.strictEqual(repaired.messages, messages)
      assert.strictEqual(repaired.inserted, 0)
      assert.strictEqual(repaired.dropped, 0)
    })

    // A conversation: users, assistants with calls of which some are answered, and stray results at random places.
    const conversation = fc
      .tuple(
        fc.array(
          fc.oneof(
            fc.constant<"user">("user"),
            fc.array(fc.record({ tool: fc.constantFrom("bash", "read"), answered: fc.boolean() }), {
              minLength: 0,
              maxLength: 3
            })
          ),
          { maxLength: 12 }
        ),
        fc.array(
          fc.record({ at: fc.nat(), id: fc.oneof(fc.nat({ max: 20 }).map((n) => `call-${n}`), fc.constant("ghost")) }),
          {
            maxLength: 4
          }
        )
      )
      .map(([turns, strays]) => {
        const messages: Array<Message> = []
        let next = 0
        for (const turn of turns) {
          if (turn === "user") {
            messages.push(user(`u${messages.length}`))
            continue
          }
          const calls = turn.map((call) => ({ ...call, id: `call-${next++}` }))
          messages.push(assistant(...calls.map((call) => [call.id, call.tool] as const)))
          for (const call of calls) if (call.answered) messages.push(result(call.id, call.tool))
        }
        for (const stray of strays) messages.splice(stray.at % (messages.length + 1), 0, result(stray.id))
        return messages
      })

    it("property: no orphans remain, results follow calls, non-tool messages keep their order, idempotent", () => {
      fc.assert(
        fc.property(
          conversation,
          fc.constantFrom("cancelled" as const, "interrupted by restart" as const),
          (messages, reason) => {
            const once = repair(messages, reason)
            assert.deepStrictEqual(findOrphanedToolCalls(once.messages), [])
            assert.isTrue(resultsFollowCalls(once.messages))
            const others = (list: ReadonlyArray<Message>) => list.filter((m) => m.role !== "tool")
            assert.deepStrictEqual(others(once.messages), others(messages))
            assert.strictEqual(once.inserted, findOrphanedToolCalls(messages).length)
            assert.strictEqual(once.messages.length, messages.length + once.inserted - once.dropped)
            const twice = repair(once.messages, reason)
            assert.strictEqual(twice.messages, once.messages)
            assert.strictEqual(twice.inserted, 0)
            assert.strictEqual(twice.dropped, 0)
          }
        )
      )
    })

    it("property: each synthetic result sits between its owner and the owner's next non-tool message", () => {
      fc.assert(
        fc.property(conversation, (messages) => {
          const out = repair(messages, "cancelled").messages
          const original = new Set(messages)
          out.forEach((message, index) => {
            if (original.has(message)) return
            let owner = index - 1
            while (out[owner]!.role === "tool") owner--
            assert.isTrue(out[owner]!.tool_calls?.some((call) => call.id === message.tool_call_id))
          })
        })
      )
    })

    it("property: a transcript without orphans or strays is returned unchanged", () => {
      const valid = conversation.map((messages) => repair(messages, "cancelled").messages.slice())
      fc.assert(
        fc.property(valid, (messages) => {
          const repaired = repair(messages, "interrupted by restart")
          assert.strictEqual(repaired.messages, messages)
          assert.deepStrictEqual([repaired.inserted, repaired.dropped], [0, 0])
        })
      )
    })

    it("property: repaired transcripts survive toJsonl and parseJsonl unchanged", () => {
      fc.assert(
        fc.property(
          conversation,
          fc.dictionary(fc.constantFrom("timestamp", "metadata", "x"), fc.jsonValue()),
          (m, extra) => {
            const messages = repair(m, "cancelled").messages.map((message) => ({ ...extra, ...message }))
            const text = toJsonl(messages)
            const parsed = Effect.runSync(parseJsonl(text, "s"))
            assert.isFalse(parsed.tornLastLine)
            assert.strictEqual(toJsonl(parsed.messages), text)
          }
        )
      )
    })
  })
})
