import { NodeHttpClient, NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Fiber, FileSystem, Layer, Stream } from "effect"
import type { Scope } from "effect"
import { BundleLoader, CwdGuard, SessionBackend, TranscriptStore } from "effect-session-backend"
import type { SessionEvent } from "effect-session-backend"
import { TestClock } from "effect/testing"
import * as fs from "node:fs"
import * as path from "node:path"
import * as AgentEngine from "../src/AgentEngine.ts"
import * as DefaultBundle from "../src/DefaultBundle.ts"
import * as Hooks from "../src/Hooks.ts"
import * as FakeOpenAi from "./support/fakeOpenAi.ts"

const spec = (url: string, overrides: Partial<AgentEngine.BundleSpec> = {}): AgentEngine.BundleSpec => ({
  ...DefaultBundle.spec,
  name: "e2e",
  providers: [{ module: "provider-openai-compatible", config: { base_url: url, model: "fake-model" } }],
  ...overrides
})

interface World {
  readonly sessions: SessionBackend.Service
  readonly store: TranscriptStore.Service
  readonly fake: FakeOpenAi.FakeOpenAi
  readonly workingDir: string
}

const tempDir = (prefix: string) =>
  FileSystem.FileSystem.pipe(
    Effect.flatMap((files) => files.makeTempDirectoryScoped({ prefix })),
    Effect.provide(NodeServices.layer)
  )

/** The whole backend over the engine, a file store in a temp home, and the fake provider on loopback. */
const withWorld = <A, E>(
  makeSpec: (url: string) => AgentEngine.BundleSpec,
  body: (world: World) => Effect.Effect<A, E, Scope.Scope>,
  env: Record<string, string> = {}
) =>
  Effect.gen(function*() {
    const fake = yield* FakeOpenAi.make
    const home = yield* tempDir("esb-home-")
    const workingDir = fs.realpathSync(yield* tempDir("esb-work-"))
    const services = Layer.mergeAll(
      NodeHttpClient.layerNodeHttp,
      NodeServices.layer,
      Hooks.layer,
      ConfigProvider.layer(ConfigProvider.fromEnvRecord(env))
    )
    const engine = AgentEngine.layer().pipe(Layer.provideMerge(services))
    const prepared = yield* Effect.flatMap(AgentEngine.AgentEngine, (e) => e.prepare(makeSpec(fake.url))).pipe(
      Effect.provide(engine)
    )
    const store = TranscriptStore.layerFileNode({ home })
    const backend = SessionBackend.layer.pipe(
      Layer.provide([BundleLoader.layerBundles([prepared]), store, CwdGuard.layer])
    )
    return yield* Effect.gen(function*() {
      const sessions = yield* SessionBackend.SessionBackend
      const transcripts = yield* TranscriptStore.TranscriptStore
      return yield* body({ sessions, store: transcripts, fake, workingDir })
    }).pipe(Effect.provide(Layer.merge(backend, store)))
  })

const firstOf = <T extends SessionEvent.SessionEvent>(
  sessions: SessionBackend.Service,
  id: string,
  tag: T["_tag"]
) =>
  sessions.events(id, { after: 0 }).pipe(
    Stream.filter((event): event is T => event._tag === tag),
    Stream.runHead,
    Effect.map((head) => {
      if (head._tag === "None") throw new Error(`no ${tag}`)
      return head.value
    })
  )

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe("AgentEngine against an OpenAI-compatible server", () => {
  it.effect("a session lists its folder with a tool and answers from the result", () =>
    withWorld(spec, ({ fake, sessions, store, workingDir }) =>
      Effect.gen(function*() {
        fs.writeFileSync(path.join(workingDir, "a.txt"), "A")
        yield* fake.enqueue(
          FakeOpenAi.toolCalls([{ id: "call_ls", name: "list_directory", arguments: { path: "." } }]),
          FakeOpenAi.text("There is one file, a.txt.", { chunks: 4 })
        )
        const { sessionId } = yield* sessions.createSession({ workingDir })
        assert.strictEqual(yield* sessions.sendMessage(sessionId, "what is here?"), "There is one file, a.txt.")
        const [first, second] = yield* fake.requests
        const tools = (first.body as { tools: Array<{ function: { name: string } }> }).tools.map((t) => t.function.name)
        assert.includeMembers(tools, ["read_file", "list_directory", "write_file", "run_command", "delegate"])
        const messages = (second.body as { messages: Array<{ role: string; content: unknown }> }).messages
        assert.deepStrictEqual(messages.map((m) => m.role), ["system", "user", "assistant", "tool"])
        assert.include(String(messages[3].content), "a.txt")
        const transcript = (yield* store.load(yield* store.find(sessionId))).messages
        assert.deepStrictEqual(transcript.map((m) => m.role), ["user", "assistant", "tool", "assistant"])
      })))

  it.effect("writing a file waits for the user's allow", () =>
    withWorld(spec, ({ fake, sessions, workingDir }) =>
      Effect.gen(function*() {
        yield* fake.enqueue(
          FakeOpenAi.toolCalls([{ name: "write_file", arguments: { path: "notes/todo.md", content: "ship" } }]),
          FakeOpenAi.text("Written.")
        )
        const { sessionId } = yield* sessions.createSession({ workingDir })
        const turn = yield* sessions.sendMessage(sessionId, "note it").pipe(Effect.forkChild)
        const request = yield* firstOf<SessionEvent.ApprovalRequired>(sessions, sessionId, "approval:required")
        assert.include(request.prompt, "notes/todo.md")
        assert.isFalse(fs.existsSync(path.join(workingDir, "notes", "todo.md")), "nothing written before the allow")
        yield* sessions.resolveApproval(sessionId, request.requestId, "allow")
        assert.strictEqual(yield* Fiber.join(turn), "Written.")
        assert.strictEqual(fs.readFileSync(path.join(workingDir, "notes", "todo.md"), "utf8"), "ship")
      })))

  it.effect("immediate cancel aborts the provider's HTTP request, and the next message works", () =>
    withWorld(spec, ({ fake, sessions, workingDir }) =>
      Effect.gen(function*() {
        yield* fake.enqueue(FakeOpenAi.stall({ text: "Thinking very", afterChunks: 2 }), FakeOpenAi.text("Fresh."))
        const { sessionId } = yield* sessions.createSession({ workingDir })
        const turn = yield* sessions.sendMessage(sessionId, "go").pipe(Effect.flip, Effect.forkChild)
        yield* firstOf(sessions, sessionId, "content_block:delta")
        yield* sessions.cancelSession(sessionId, "immediate")
        assert.strictEqual((yield* Fiber.join(turn))._tag, "TurnCancelled")
        yield* fake.awaitAborted(1)
        assert.strictEqual(yield* sessions.sendMessage(sessionId, "again"), "Fresh.")
      })))

  it.live(
    "immediate cancel kills a running command and answers its call",
    () =>
      withWorld(spec, ({ fake, sessions, workingDir }) =>
        Effect.gen(function*() {
          yield* fake.enqueue(
            FakeOpenAi.toolCalls([{
              id: "call_run",
              name: "run_command",
              arguments: { command: "echo $$ > pid.txt; exec sleep 30" }
            }]),
            FakeOpenAi.text("Next.")
          )
          const { sessionId } = yield* sessions.createSession({ workingDir })
          const turn = yield* sessions.sendMessage(sessionId, "run it").pipe(Effect.flip, Effect.forkChild)
          const request = yield* firstOf<SessionEvent.ApprovalRequired>(sessions, sessionId, "approval:required")
          yield* sessions.resolveApproval(sessionId, request.requestId, "allow")
          const pidFile = path.join(workingDir, "pid.txt")
          while (!fs.existsSync(pidFile) || fs.readFileSync(pidFile, "utf8").trim() === "") {
            yield* Effect.sleep("20 millis")
          }
          const pid = Number(fs.readFileSync(pidFile, "utf8").trim())
          assert.isTrue(isAlive(pid))
          yield* sessions.cancelSession(sessionId, "immediate")
          assert.strictEqual((yield* Fiber.join(turn))._tag, "TurnCancelled")
          for (let i = 0; i < 100 && isAlive(pid); i++) yield* Effect.sleep("20 millis")
          assert.isFalse(isAlive(pid), "the command's process was killed")
          assert.strictEqual(yield* sessions.sendMessage(sessionId, "and now?"), "Next.")
          const [, second] = yield* fake.requests
          const messages =
            (second.body as { messages: Array<{ role: string; tool_call_id?: string; content: unknown }> })
              .messages
          const answered = messages.find((m) => m.role === "tool" && m.tool_call_id === "call_run")
          assert.include(String(answered?.content), "cancel")
        })),
    30_000
  )

  it.effect("a stalled stream fails the turn on the clock with a provider:error", () =>
    withWorld(spec, ({ fake, sessions, workingDir }) =>
      Effect.gen(function*() {
        yield* fake.enqueue(FakeOpenAi.stall({ text: "Hm", afterChunks: 2 }))
        const { sessionId } = yield* sessions.createSession({ workingDir })
        const turn = yield* sessions.sendMessage(sessionId, "go").pipe(Effect.flip, Effect.forkChild)
        yield* firstOf(sessions, sessionId, "content_block:delta")
        yield* TestClock.adjust("61 seconds")
        const error = yield* Fiber.join(turn)
        assert.strictEqual(error._tag, "TurnFailed")
        const failed = yield* firstOf<SessionEvent.ProviderError>(sessions, sessionId, "provider:error")
        assert.strictEqual(failed.reason, "NetworkError")
      })))

  it.effect("the key is read from the named variable and appears in no event or error", () =>
    withWorld(
      (url) =>
        spec(url, {
          providers: [{
            module: "provider-openai-compatible",
            config: { base_url: url, model: "m", api_key_env: "MY_KEY" }
          }]
        }),
      ({ fake, sessions, workingDir }) =>
        Effect.gen(function*() {
          yield* fake.enqueue(FakeOpenAi.error(401, "bad key sk-very-secret"))
          const { sessionId } = yield* sessions.createSession({ workingDir })
          const error = yield* sessions.sendMessage(sessionId, "go").pipe(Effect.flip)
          const [request] = yield* fake.requests
          assert.strictEqual(request.headers.authorization, "Bearer sk-very-secret")
          const events = yield* sessions.events(sessionId, { after: 0 }).pipe(
            Stream.takeUntil((e) => e._tag === "orchestrator:complete"),
            Stream.runCollect
          )
          assert.notInclude(JSON.stringify(Array.from(events)), "sk-very-secret")
          assert.notInclude(String(error) + JSON.stringify(error), "sk-very-secret")
        }),
      { MY_KEY: "sk-very-secret" }
    ))

  it.effect("a key written into a bundle is refused, naming the field", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flatMap(AgentEngine.AgentEngine, (engine) =>
        engine.prepare(spec("http://127.0.0.1:9", {
          providers: [{ module: "provider-openai", config: { model: "m", api_key: "sk-x" } }]
        }))).pipe(
          Effect.flip,
          Effect.provide(
            AgentEngine.layer().pipe(
              Layer.provide([NodeHttpClient.layerNodeHttp, NodeServices.layer, Hooks.layer])
            )
          )
        )
      assert.strictEqual(error._tag, "BundleLoadError")
      assert.strictEqual(error.field, "providers[0].config.api_key")
    }))

  it.effect("with no provider configured the default bundle runs the offline model with the real tools", () =>
    withWorld(() => DefaultBundle.spec, ({ fake, sessions, workingDir }) =>
      Effect.gen(function*() {
        fs.writeFileSync(path.join(workingDir, "hello.txt"), "hi")
        const { sessionId } = yield* sessions.createSession({ workingDir })
        const answer = yield* sessions.sendMessage(sessionId, "list the files")
        assert.include(answer, "hello.txt")
        assert.deepStrictEqual(yield* fake.requests, [], "no HTTP request")
      })))
})
