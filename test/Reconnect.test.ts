import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, FileSystem, Layer, Ref, Stream } from "effect"
import { BundleLoader, CwdGuard, SessionBackend, Testing, Transcript, TranscriptStore } from "effect-session-backend"
import { TestClock } from "effect/testing"
import * as path from "node:path"

/** Answers with what the engine sees of the conversation when the turn starts. */
const script: Testing.Script = (prompt) =>
  prompt.startsWith("tool")
    ? [Testing.toolCall("read_file", { path: "a.txt" }, Effect.succeed("contents")), Testing.reply("read it")]
    : prompt === "hang in tool"
    ? [Testing.toolCall("slow", {}, Effect.never)]
    : [Testing.effect((turn) => Effect.map(turn.history.messages, (messages) => `seen ${messages.length}`))]

/** A backend over the files under `home`; closing the scope is the "restart". */
const backendAt = (home: string, options: Testing.LayerOptions = {}) =>
  Testing.layer({ script, store: TranscriptStore.layerFileNode({ home }), ...options })

const tempHome = FileSystem.FileSystem.pipe(
  Effect.flatMap((fs) => fs.makeTempDirectoryScoped({ prefix: "esb-home-" })),
  Effect.provide(NodeFileSystem.layer)
)

const readLines = (file: string) =>
  FileSystem.FileSystem.pipe(
    Effect.flatMap((fs) => fs.readFileString(file)),
    Effect.map((text) => text.split("\n").filter((line) => line.length > 0).map((line) => JSON.parse(line))),
    Effect.provide(NodeFileSystem.layer)
  )

const writeFile = (file: string, text: string) =>
  FileSystem.FileSystem.pipe(
    Effect.flatMap((fs) =>
      Effect.andThen(fs.makeDirectory(path.dirname(file), { recursive: true }), fs.writeFileString(file, text))
    ),
    Effect.provide(NodeFileSystem.layer)
  )

const sessionDir = (home: string, workingDir: string, id: string) =>
  path.join(home, "projects", workingDir.replaceAll("/", "-"), "sessions", id)

describe("durable sessions", () => {
  it.effect("a session used, dropped with its backend and continued by a new one keeps all its history", () =>
    Effect.gen(function*() {
      const home = yield* tempHome
      const { sessionId, workingDir } = yield* Effect.gen(function*() {
        const sessions = yield* SessionBackend.SessionBackend
        const info = yield* sessions.createSession({ workingDir: "/srv/project", description: "first" })
        assert.strictEqual(yield* sessions.sendMessage(info.sessionId, "tool please"), "read it")
        assert.strictEqual(yield* sessions.sendMessage(info.sessionId, "how much?"), "seen 5")
        return info
      }).pipe(Effect.provide(backendAt(home)))

      yield* Effect.gen(function*() {
        const sessions = yield* SessionBackend.SessionBackend
        assert.deepStrictEqual(yield* sessions.listActiveSessions, [])
        // user, tool call, tool result, answer; user, answer; and now the new prompt
        assert.strictEqual(yield* sessions.sendMessage(sessionId, "and now?"), "seen 7")
        const [info] = yield* sessions.listActiveSessions
        assert.strictEqual(info.workingDir, workingDir, "the working directory it was created with, not ~")
        assert.strictEqual(info.description, "first")
        const first = yield* sessions.events(sessionId, { after: 0 }).pipe(Stream.take(1), Stream.runCollect)
        assert.strictEqual(first[0]._tag, "session:resume")
      }).pipe(Effect.provide(backendAt(home)))

      const lines = yield* readLines(path.join(sessionDir(home, "/srv/project", sessionId), "transcript.jsonl"))
      assert.deepStrictEqual(lines.map((m) => m.role), [
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant"
      ])
      assert.deepStrictEqual(Transcript.findOrphanedToolCalls(lines), [])
    }))

  it.effect("100 concurrent first messages to a cold session: one activation, 100 replies in order", () =>
    Effect.gen(function*() {
      const home = yield* tempHome
      const loads = yield* Ref.make(0)
      const counting = Layer.effect(
        BundleLoader.BundleLoader,
        Effect.sync(() =>
          BundleLoader.BundleLoader.of({
            load: () => Ref.update(loads, (n) => n + 1).pipe(Effect.as(Testing.bundle({ script: Testing.echo })))
          })
        )
      )
      const layerCounting = SessionBackend.layer.pipe(
        Layer.provide([counting, TranscriptStore.layerFileNode({ home }), CwdGuard.layer])
      )
      const { sessionId } = yield* Effect.gen(function*() {
        const sessions = yield* SessionBackend.SessionBackend
        return yield* sessions.createSession({ workingDir: "/srv/cold" })
      }).pipe(Effect.provide(layerCounting))
      yield* Ref.set(loads, 0)
      yield* Effect.gen(function*() {
        const sessions = yield* SessionBackend.SessionBackend
        const texts = Array.from({ length: 100 }, (_, i) => `m${i}`)
        const replies = yield* Effect.forEach(texts, (text) => sessions.sendMessage(sessionId, text), {
          concurrency: "unbounded"
        })
        assert.deepStrictEqual(replies, texts)
        assert.strictEqual(yield* Ref.get(loads), 1)
      }).pipe(Effect.provide(layerCounting))
    }))

  it.effect("an ended session never comes back, not even after a restart", () =>
    Effect.gen(function*() {
      const home = yield* tempHome
      const { sessionId } = yield* Effect.gen(function*() {
        const sessions = yield* SessionBackend.SessionBackend
        const info = yield* sessions.createSession({ workingDir: "/srv/p" })
        yield* sessions.sendMessage(info.sessionId, "hi")
        yield* sessions.endSession(info.sessionId)
        return info
      }).pipe(Effect.provide(backendAt(home)))
      yield* Effect.gen(function*() {
        const sessions = yield* SessionBackend.SessionBackend
        const sent = yield* sessions.sendMessage(sessionId, "again").pipe(Effect.flip)
        assert.strictEqual(sent._tag, "SessionEnded")
        const resumed = yield* sessions.resumeSession(sessionId).pipe(Effect.flip)
        assert.strictEqual(resumed.reason._tag, "SessionEnded")
      }).pipe(Effect.provide(backendAt(home)))
    }))

  it.effect("a transcript in the origin's format loads, is repaired and written back, unknown keys kept", () =>
    Effect.gen(function*() {
      const home = yield* tempHome
      const dir = sessionDir(home, "/tmp/origin-project", "origin-1")
      const origin = [
        { role: "user", content: "list files", timestamp: "2026-01-01T00:00:00Z" },
        { role: "assistant", content: null, tool_calls: [{ id: "t1", tool: "bash", arguments: { cmd: "ls" } }] }
      ]
      yield* writeFile(path.join(dir, "transcript.jsonl"), origin.map((m) => JSON.stringify(m)).join("\n") + "\n")
      yield* writeFile(
        path.join(dir, "metadata.json"),
        JSON.stringify({
          session_id: "origin-1",
          bundle: "scripted",
          working_dir: "/tmp/origin-project",
          turn_count: 1
        })
      )
      yield* Effect.gen(function*() {
        const sessions = yield* SessionBackend.SessionBackend
        assert.strictEqual(yield* sessions.sendMessage("origin-1", "what now?"), "seen 4")
      }).pipe(Effect.provide(backendAt(home)))
      const lines = yield* readLines(path.join(dir, "transcript.jsonl"))
      assert.deepStrictEqual(lines[0], origin[0], "unknown keys survive")
      assert.deepStrictEqual(lines[1], origin[1], "the origin's tool call shape survives")
      assert.strictEqual(lines[2].role, "tool")
      assert.strictEqual(lines[2].tool_call_id, "t1")
      assert.match(lines[2].content, /restart/)
      assert.deepStrictEqual(Transcript.findOrphanedToolCalls(lines), [])
    }))

  it.effect("every failure of the pipeline is a typed reason, never a generic unknown session", () =>
    Effect.gen(function*() {
      const home = yield* tempHome
      const corrupt = sessionDir(home, "/p", "corrupt")
      yield* writeFile(path.join(corrupt, "transcript.jsonl"), "{\"role\":\"user\",\"content\":\"a\"}\nnot json\n{}\n")
      yield* writeFile(path.join(corrupt, "metadata.json"), "{}")
      const badBundle = sessionDir(home, "/p", "bad-bundle")
      yield* writeFile(path.join(badBundle, "transcript.jsonl"), "")
      yield* writeFile(path.join(badBundle, "metadata.json"), JSON.stringify({ bundle: "no-such-bundle" }))
      yield* Effect.gen(function*() {
        const sessions = yield* SessionBackend.SessionBackend
        const corrupted = yield* sessions.resumeSession("corrupt").pipe(Effect.flip)
        assert.strictEqual(corrupted.reason._tag, "TranscriptCorrupt")
        assert.strictEqual(corrupted.reason._tag === "TranscriptCorrupt" && corrupted.reason.line, 2)
        const sent = yield* sessions.sendMessage("corrupt", "hi").pipe(Effect.flip)
        assert.strictEqual(sent._tag, "ReconnectError")
        const bundle = yield* sessions.resumeSession("bad-bundle").pipe(Effect.flip)
        assert.strictEqual(bundle.reason._tag, "BundleLoadError")
        const missing = yield* sessions.resumeSession("missing").pipe(Effect.flip)
        assert.strictEqual(missing.reason._tag, "TranscriptNotFound")
        assert.strictEqual((yield* sessions.sendMessage("missing", "hi").pipe(Effect.flip))._tag, "SessionNotFound")
        assert.deepStrictEqual(yield* sessions.listActiveSessions, [], "a failed activation leaves nothing behind")
      }).pipe(Effect.provide(backendAt(home)))
    }))

  it.effect("an immediate cancel inside a tool call leaves a valid transcript and the next message works", () =>
    Effect.gen(function*() {
      const home = yield* tempHome
      const { sessionId } = yield* Effect.gen(function*() {
        const sessions = yield* SessionBackend.SessionBackend
        const info = yield* sessions.createSession({ workingDir: "/srv/c" })
        const turn = yield* sessions.sendMessage(info.sessionId, "hang in tool").pipe(Effect.exit, Effect.forkChild)
        yield* sessions.events(info.sessionId, { after: 0 }).pipe(
          Stream.takeUntil((event) => event._tag === "tool:pre"),
          Stream.runDrain
        )
        yield* sessions.cancelSession(info.sessionId, "immediate")
        assert.isTrue(Exit.isFailure(yield* Fiber.join(turn)))
        assert.strictEqual(yield* sessions.sendMessage(info.sessionId, "next"), "seen 5")
        return info
      }).pipe(Effect.provide(backendAt(home)))
      const lines = yield* readLines(path.join(sessionDir(home, "/srv/c", sessionId), "transcript.jsonl"))
      assert.deepStrictEqual(lines.map((m) => m.role), ["user", "assistant", "tool", "assistant", "user", "assistant"])
      assert.match(lines[2].content, /cancelled/)
      assert.strictEqual(lines[3].content, "The operation was cancelled.")
    }))

  it.effect("a torn last line from a crash mid-append is dropped and the file rewritten", () =>
    Effect.gen(function*() {
      const home = yield* tempHome
      const dir = sessionDir(home, "/t", "torn")
      yield* writeFile(path.join(dir, "transcript.jsonl"), "{\"role\":\"user\",\"content\":\"a\"}\n{\"role\":\"assis")
      yield* writeFile(path.join(dir, "metadata.json"), JSON.stringify({ bundle: "scripted", working_dir: "/t" }))
      yield* Effect.gen(function*() {
        const sessions = yield* SessionBackend.SessionBackend
        assert.strictEqual(yield* sessions.sendMessage("torn", "b"), "seen 2")
      }).pipe(Effect.provide(backendAt(home)))
      const lines = yield* readLines(path.join(dir, "transcript.jsonl"))
      assert.deepStrictEqual(lines.map((m) => m.content), ["a", "b", "seen 2"])
    }))
})

describe("passivation", () => {
  it.effect("an idle session is released after idleTimeout and its next message brings it back unchanged", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionBackend.SessionBackend
      const { sessionId } = yield* sessions.createSession({ workingDir: "/srv/idle" })
      assert.strictEqual(yield* sessions.sendMessage(sessionId, "one"), "seen 1")
      yield* TestClock.adjust("29 minutes")
      assert.strictEqual((yield* sessions.listActiveSessions).length, 1)
      yield* TestClock.adjust("2 minutes")
      assert.deepStrictEqual(yield* sessions.listActiveSessions, [])
      assert.strictEqual(yield* sessions.sendMessage(sessionId, "two"), "seen 3")
      assert.strictEqual((yield* sessions.listActiveSessions).length, 1)
    }).pipe(Effect.provide(Testing.layer({ script }))))

  it.effect("never while a turn runs, an approval waits, or a subscriber listens", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const holding: Testing.Script = (prompt) =>
        prompt === "hold"
          ? [Testing.awaitDeferred(gate), Testing.reply("held")]
          : prompt === "ask"
          ? [Testing.approval({ prompt: "ok?", timeout: "2 hours" })]
          : [Testing.reply(prompt)]
      yield* Effect.gen(function*() {
        const sessions = yield* SessionBackend.SessionBackend
        const busy = yield* sessions.createSession()
        const asking = yield* sessions.createSession()
        const watched = yield* sessions.createSession()
        const idle = yield* sessions.createSession()
        const turn = yield* sessions.sendMessage(busy.sessionId, "hold").pipe(Effect.forkChild)
        const ask = yield* sessions.sendMessage(asking.sessionId, "ask").pipe(Effect.forkChild)
        const watcher = yield* sessions.events(watched.sessionId).pipe(Stream.runDrain, Effect.forkChild)
        yield* Effect.yieldNow
        yield* TestClock.adjust("1 hour")
        const live = (yield* sessions.listActiveSessions).map((info) => info.sessionId).sort()
        assert.deepStrictEqual(live, [busy.sessionId, asking.sessionId, watched.sessionId].sort())
        assert.notInclude(live, idle.sessionId)
        yield* Deferred.succeed(gate, undefined)
        assert.strictEqual(yield* Fiber.join(turn), "held")
        const [pending] = yield* sessions.pendingApprovals(asking.sessionId)
        yield* sessions.resolveApproval(asking.sessionId, pending.requestId, "allow")
        yield* Fiber.join(ask)
        yield* Fiber.interrupt(watcher)
      }).pipe(Effect.provide(Testing.layer({ script: holding })))
    }))
})
