import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Ref, Schema, Stream } from "effect"
import { SessionBackend, Testing, TranscriptStore } from "effect-session-backend"
import type { SessionEvent } from "effect-session-backend"
import { AiError, Tool, Toolkit } from "effect/ai"
import type { Prompt } from "effect/ai"
import { TestClock } from "effect/testing"
import * as Hooks from "../src/Hooks.ts"
import * as Orchestrator from "../src/Orchestrator.ts"

const Add = Tool.make("add", {
  description: "Adds two numbers",
  parameters: Schema.Struct({ a: Schema.Number, b: Schema.Number }),
  success: Schema.Number
})
const Wait = Tool.make("wait", {
  description: "Waits for the test",
  parameters: Schema.Struct({ name: Schema.String }),
  success: Schema.String
})
const Deploy = Tool.make("deploy", {
  description: "Deploys",
  parameters: Schema.Struct({ target: Schema.String }),
  success: Schema.String,
  needsApproval: true
})
const Tools = Toolkit.make(Add, Wait, Deploy)

/** What the tools did, for the test to see. */
interface Probe {
  readonly started: Ref.Ref<ReadonlyArray<string>>
  readonly interrupted: Ref.Ref<ReadonlyArray<string>>
  readonly gates: Map<string, Deferred.Deferred<void>>
}

const makeProbe = Effect.sync((): Probe => ({
  started: Ref.makeUnsafe<ReadonlyArray<string>>([]),
  interrupted: Ref.makeUnsafe<ReadonlyArray<string>>([]),
  gates: new Map()
}))

const gate = (probe: Probe, name: string) => {
  let gate = probe.gates.get(name)
  if (gate === undefined) {
    gate = Deferred.makeUnsafe<void>()
    probe.gates.set(name, gate)
  }
  return gate
}

const toolsetFor = (probe: Probe) =>
  Effect.map(
    Effect.provide(
      Tools,
      Tools.toLayer({
        add: ({ a, b }) => Ref.update(probe.started, (s) => [...s, "add"]).pipe(Effect.as(a + b)),
        wait: ({ name }) =>
          Ref.update(probe.started, (s) => [...s, name]).pipe(
            Effect.andThen(Deferred.await(gate(probe, name))),
            Effect.as(`${name} done`),
            Effect.onInterrupt(() => Ref.update(probe.interrupted, (s) => [...s, name]))
          ),
        deploy: ({ target }) => Ref.update(probe.started, (s) => [...s, `deploy:${target}`]).pipe(Effect.as("deployed"))
      })
    ),
    (toolkit) => Orchestrator.toolset(toolkit)
  )

interface Setup {
  readonly answers: Parameters<typeof Testing.model>[0]
  readonly hooks?: Hooks.Hooks["Service"]
  readonly agents?: (probe: Probe) => Effect.Effect<Record<string, Orchestrator.SubAgent>>
  readonly maxIterations?: number
}

/** Runs `body` against a backend whose bundle runs the real loop over a scripted model and the test tools. */
const withLoop = <A, E>(
  setup: Setup,
  body: (ctx: {
    readonly sessions: SessionBackend.Service
    readonly store: TranscriptStore.Service
    readonly probe: Probe
    readonly prompts: Effect.Effect<ReadonlyArray<Prompt.Prompt>>
  }) => Effect.Effect<A, E>
) =>
  Effect.gen(function*() {
    const probe = yield* makeProbe
    const model = yield* Testing.model(setup.answers)
    const toolset = yield* toolsetFor(probe)
    const agents = setup.agents === undefined ? undefined : yield* setup.agents(probe)
    const store = TranscriptStore.layerMemory()
    const prepared = Orchestrator.prepare({
      name: "loop",
      version: "1.0.0",
      options: () =>
        Effect.succeed({
          instruction: "You are a test.",
          model: { provider: "scripted", model: "test", service: model.service },
          toolsets: [toolset],
          hooks: setup.hooks,
          agents,
          maxIterations: setup.maxIterations
        })
    })
    return yield* Effect.gen(function*() {
      const sessions = yield* SessionBackend.SessionBackend
      const transcripts = yield* TranscriptStore.TranscriptStore
      return yield* body({ sessions, store: transcripts, probe, prompts: model.prompts })
    }).pipe(Effect.provide(Layer.merge(Testing.layer({ prepared, store }), store)))
  })

const transcriptOf = (store: TranscriptStore.Service, id: string) =>
  store.find(id).pipe(Effect.flatMap(store.load), Effect.map((loaded) => loaded.messages))

const eventsOf = (sessions: SessionBackend.Service, id: string) =>
  sessions.events(id, { after: 0 }).pipe(
    Stream.takeUntil((event) => event._tag === "orchestrator:complete"),
    Stream.runCollect,
    Effect.map((events) => Array.from(events))
  )

const tags = (events: ReadonlyArray<SessionEvent.SessionEvent>) => events.map((event) => event._tag)

/** The next approval request of the session after `after`. */
const nextApproval = (sessions: SessionBackend.Service, id: string, after?: number) =>
  sessions.events(id, after === undefined ? {} : { after }).pipe(
    Stream.filter((e): e is SessionEvent.ApprovalRequired => e._tag === "approval:required"),
    Stream.runHead,
    Effect.map((head) => {
      if (head._tag === "None") throw new Error("no approval request")
      return head.value
    })
  )

const waitFor = (sessions: SessionBackend.Service, id: string, tag: SessionEvent.Tag) =>
  sessions.events(id).pipe(Stream.filter((event) => event._tag === tag), Stream.runHead, Effect.asVoid)

describe("Orchestrator", () => {
  it.effect("streams the model's answer as events and answers the sender", () =>
    withLoop({ answers: [{ text: "Hello there, friend." }] }, ({ prompts, sessions, store }) =>
      Effect.gen(function*() {
        const { sessionId } = yield* sessions.createSession()
        const events = yield* eventsOf(sessions, sessionId).pipe(Effect.forkChild)
        assert.strictEqual(yield* sessions.sendMessage(sessionId, "hi"), "Hello there, friend.")
        const seen = yield* Fiber.join(events)
        assert.deepStrictEqual(tags(seen).slice(1), [
          "prompt:submit",
          "provider:request",
          "content_block:start",
          "content_block:delta",
          "content_block:delta",
          "content_block:delta",
          "content_block:end",
          "provider:response",
          "prompt:complete",
          "orchestrator:complete"
        ])
        const [sent] = yield* prompts
        assert.deepStrictEqual(sent.content.map((m) => m.role), ["system", "user"])
        assert.deepStrictEqual((yield* transcriptOf(store, sessionId)).map((m) => [m.role, m.content]), [
          ["user", "hi"],
          ["assistant", "Hello there, friend."]
        ])
      })))

  it.effect("runs the tool calls, feeds the results back and loops until the model answers", () =>
    withLoop({
      answers: [
        { text: "Adding.", toolCalls: [{ name: "add", params: { a: 2, b: 3 }, id: "c1" }] },
        (prompt) => ({ text: `The sum is ${JSON.stringify(prompt.content.at(-1)?.content)}` })
      ]
    }, ({ prompts, sessions, store }) =>
      Effect.gen(function*() {
        const { sessionId } = yield* sessions.createSession()
        const events = yield* eventsOf(sessions, sessionId).pipe(Effect.forkChild)
        const answer = yield* sessions.sendMessage(sessionId, "2+3?")
        assert.include(answer, "The sum is")
        assert.include(answer, "\"result\":\"5\"")
        const seen = yield* Fiber.join(events)
        const post = seen.find((e): e is SessionEvent.ToolPost => e._tag === "tool:post")
        assert.strictEqual(post?.result, 5)
        assert.strictEqual(tags(seen).filter((t) => t === "provider:request").length, 2)
        assert.strictEqual((yield* prompts).length, 2)
        const transcript = yield* transcriptOf(store, sessionId)
        assert.deepStrictEqual(transcript.map((m) => m.role), ["user", "assistant", "tool", "assistant"])
        assert.deepStrictEqual(transcript[1].tool_calls, [{ id: "c1", tool: "add", arguments: { a: 2, b: 3 } }])
        assert.strictEqual(transcript[2].tool_call_id, "c1")
        assert.strictEqual(transcript[2].content, "5")
      })))

  it.effect("runs the calls of one batch in parallel and writes each result as it lands", () =>
    withLoop({
      answers: [
        { toolCalls: [{ name: "wait", params: { name: "a" } }, { name: "wait", params: { name: "b" } }] },
        { text: "both done" }
      ]
    }, ({ probe, sessions, store }) =>
      Effect.gen(function*() {
        const { sessionId } = yield* sessions.createSession()
        const turn = yield* sessions.sendMessage(sessionId, "go").pipe(Effect.forkChild)
        while ((yield* Ref.get(probe.started)).length < 2) yield* Effect.yieldNow
        assert.deepStrictEqual([...(yield* Ref.get(probe.started))].sort(), ["a", "b"], "both started at once")
        yield* Deferred.succeed(gate(probe, "b"), undefined)
        yield* waitFor(sessions, sessionId, "tool:post")
        const mid = yield* transcriptOf(store, sessionId)
        assert.deepStrictEqual(mid.map((m) => m.role), ["user", "assistant", "tool"], "b's result is on disk")
        yield* Deferred.succeed(gate(probe, "a"), undefined)
        assert.strictEqual(yield* Fiber.join(turn), "both done")
      })))

  it.effect("a tool that needs approval runs only after an allow; a deny goes back to the model", () =>
    withLoop({
      answers: [
        { toolCalls: [{ name: "deploy", params: { target: "prod" } }] },
        (prompt) => ({ text: JSON.stringify(prompt.content.at(-1)?.content) }),
        { toolCalls: [{ name: "deploy", params: { target: "staging" } }] },
        { text: "ok" }
      ]
    }, ({ probe, sessions }) =>
      Effect.gen(function*() {
        const { sessionId } = yield* sessions.createSession()
        const denied = yield* sessions.sendMessage(sessionId, "deploy prod").pipe(Effect.forkChild)
        const first = yield* nextApproval(sessions, sessionId)
        assert.include(first.prompt, "deploy")
        assert.isTrue(yield* sessions.resolveApproval(sessionId, first.requestId, "deny"))
        const answer = yield* Fiber.join(denied)
        assert.include(answer, "denied")
        assert.deepStrictEqual(yield* Ref.get(probe.started), [], "the tool did not run")

        const allowed = yield* sessions.sendMessage(sessionId, "deploy staging").pipe(Effect.forkChild)
        const second = yield* nextApproval(sessions, sessionId, first.seq)
        yield* sessions.resolveApproval(sessionId, second.requestId, "allow")
        assert.strictEqual(yield* Fiber.join(allowed), "ok")
        assert.deepStrictEqual(yield* Ref.get(probe.started), ["deploy:staging"])
      })))

  it.effect("an unanswered approval times out on the clock and denies", () =>
    withLoop({
      answers: [{ toolCalls: [{ name: "deploy", params: { target: "prod" } }] }, { text: "gave up" }]
    }, ({ probe, sessions }) =>
      Effect.gen(function*() {
        const { sessionId } = yield* sessions.createSession()
        const turn = yield* sessions.sendMessage(sessionId, "deploy").pipe(Effect.forkChild)
        yield* waitFor(sessions, sessionId, "approval:required")
        yield* TestClock.adjust("5 minutes")
        assert.strictEqual(yield* Fiber.join(turn), "gave up")
        assert.deepStrictEqual(yield* Ref.get(probe.started), [])
      })))

  it.effect("graceful cancel lets the started batch finish, then stops before the next provider call", () =>
    withLoop({
      answers: [{ toolCalls: [{ name: "wait", params: { name: "slow" } }] }, { text: "next turn" }]
    }, ({ probe, prompts, sessions, store }) =>
      Effect.gen(function*() {
        const { sessionId } = yield* sessions.createSession()
        const turn = yield* sessions.sendMessage(sessionId, "go").pipe(Effect.flip, Effect.forkChild)
        while ((yield* Ref.get(probe.started)).length < 1) yield* Effect.yieldNow
        yield* sessions.cancelSession(sessionId, "graceful")
        yield* Deferred.succeed(gate(probe, "slow"), undefined)
        const error = yield* Fiber.join(turn)
        assert.strictEqual(error._tag, "TurnCancelled")
        assert.strictEqual((yield* prompts).length, 1, "no provider call after the cancel")
        const transcript = yield* transcriptOf(store, sessionId)
        assert.deepStrictEqual(transcript.map((m) => m.role), ["user", "assistant", "tool", "assistant"])
        assert.strictEqual(transcript[2].content, "slow done", "the finished tool's result was kept")
        assert.include(String(transcript[3].content), "cancelled")
        assert.strictEqual(yield* sessions.sendMessage(sessionId, "again"), "next turn")
      })))

  it.effect("immediate cancel interrupts the running tools and leaves a valid transcript", () =>
    withLoop({
      answers: [{ toolCalls: [{ name: "wait", params: { name: "stuck" } }] }, (prompt) => ({
        text: `saw ${prompt.content.map((m) => m.role).join(",")}`
      })]
    }, ({ probe, sessions, store }) =>
      Effect.gen(function*() {
        const { sessionId } = yield* sessions.createSession()
        const turn = yield* sessions.sendMessage(sessionId, "go").pipe(Effect.flip, Effect.forkChild)
        while ((yield* Ref.get(probe.started)).length < 1) yield* Effect.yieldNow
        yield* sessions.cancelSession(sessionId, "immediate")
        assert.strictEqual((yield* Fiber.join(turn))._tag, "TurnCancelled")
        assert.deepStrictEqual(yield* Ref.get(probe.interrupted), ["stuck"])
        const transcript = yield* transcriptOf(store, sessionId)
        assert.deepStrictEqual(transcript.map((m) => m.role), ["user", "assistant", "tool", "assistant"])
        assert.include(String(transcript[2].content), "cancel")
        assert.strictEqual(
          yield* sessions.sendMessage(sessionId, "again"),
          "saw system,user,assistant,tool,assistant,user",
          "the next turn sends a conversation with every call answered"
        )
      })))

  it.effect("immediate cancel interrupts a slow provider call", () =>
    withLoop(
      { answers: [{ text: "late", delay: "1 minute" }, { text: "fresh" }] },
      ({ sessions }) =>
        Effect.gen(function*() {
          const { sessionId } = yield* sessions.createSession()
          const turn = yield* sessions.sendMessage(sessionId, "go").pipe(Effect.flip, Effect.forkChild)
          yield* waitFor(sessions, sessionId, "provider:request")
          yield* sessions.cancelSession(sessionId, "immediate")
          assert.strictEqual((yield* Fiber.join(turn))._tag, "TurnCancelled")
          assert.strictEqual(yield* sessions.sendMessage(sessionId, "again"), "fresh")
        })
    ))

  it.effect("a call to an unknown tool or with bad arguments goes back to the model as an error", () =>
    withLoop({
      answers: [
        { toolCalls: [{ name: "nope", params: {} }, { name: "add", params: { a: "x" } }] },
        (prompt) => ({ text: JSON.stringify(prompt.content.slice(-2)) })
      ]
    }, ({ sessions }) =>
      Effect.gen(function*() {
        const { sessionId } = yield* sessions.createSession()
        const answer = yield* sessions.sendMessage(sessionId, "go")
        assert.include(answer, "there is no tool named 'nope'")
        assert.include(answer, "\"isFailure\":true")
      })))

  it.effect("a provider error fails the turn with the AiError and a provider:error event", () =>
    withLoop({
      answers: [{ error: new AiError.RateLimitError({}) }, { text: "recovered" }]
    }, ({ sessions }) =>
      Effect.gen(function*() {
        const { sessionId } = yield* sessions.createSession()
        const events = yield* eventsOf(sessions, sessionId).pipe(Effect.forkChild)
        const error = yield* sessions.sendMessage(sessionId, "go").pipe(Effect.flip)
        assert.strictEqual(error._tag, "TurnFailed")
        const seen = yield* Fiber.join(events)
        const failed = seen.find((e): e is SessionEvent.ProviderError => e._tag === "provider:error")
        assert.strictEqual(failed?.reason, "RateLimitError")
        assert.strictEqual(yield* sessions.sendMessage(sessionId, "again"), "recovered")
      })))

  it.effect("a model that never stops asking for tools is stopped at the iteration limit", () =>
    withLoop({
      maxIterations: 3,
      answers: Array.from({ length: 3 }, () => ({ toolCalls: [{ name: "add", params: { a: 1, b: 1 } }] }))
    }, ({ sessions }) =>
      Effect.gen(function*() {
        const { sessionId } = yield* sessions.createSession()
        const error = yield* sessions.sendMessage(sessionId, "go").pipe(Effect.flip)
        assert.strictEqual(error._tag, "TurnFailed")
        assert.include(String(error.message), "3 times")
      })))
})

describe("Orchestrator hooks", () => {
  const withHooks = <A, E>(
    register: (hooks: Hooks.Hooks["Service"]) => Effect.Effect<void>,
    answers: Setup["answers"],
    body: Parameters<typeof withLoop<A, E>>[1]
  ) =>
    Effect.gen(function*() {
      const hooks = yield* Hooks.make
      yield* register(hooks)
      return yield* withLoop({ answers, hooks }, body)
    })

  it.effect("handlers run by priority; deny stops a tool call; modify rewrites its arguments", () => {
    const order: Array<string> = []
    return withHooks(
      (hooks) =>
        Effect.gen(function*() {
          yield* hooks.register({
            name: "second",
            point: "tool:pre",
            priority: 10,
            handler: (input) =>
              Effect.sync(() => {
                order.push(`second:${JSON.stringify(input.data)}`)
                return (input.data as { a: number }).a >= 100
                  ? { action: "deny", reason: "too big" } as const
                  : { action: "continue" } as const
              })
          })
          yield* hooks.register({
            name: "first",
            point: "tool:pre",
            priority: -1,
            handler: (input) =>
              Effect.sync(() => {
                order.push("first")
                const { a, b } = input.data as { a: number; b: number }
                return { action: "modify", data: { a: a * 100, b } } as const
              })
          })
        }),
      [
        { toolCalls: [{ name: "add", params: { a: 1, b: 2 } }, { name: "add", params: { a: 0, b: 2 } }] },
        (prompt) => ({ text: JSON.stringify(prompt.content.slice(-2)) })
      ],
      ({ probe, sessions }) =>
        Effect.gen(function*() {
          const { sessionId } = yield* sessions.createSession()
          const answer = yield* sessions.sendMessage(sessionId, "go")
          assert.include(answer, "denied: too big")
          assert.include(answer, "\"result\":\"2\"", "0*100+2")
          assert.deepStrictEqual(yield* Ref.get(probe.started), ["add"])
          assert.deepStrictEqual(order.slice(0, 2), ["first", "second:{\"a\":100,\"b\":2}"])
        })
    )
  })

  it.effect("inject_context reaches the model; ask_user asks through the session; unregister removes", () =>
    withHooks(
      (hooks) =>
        Effect.gen(function*() {
          yield* hooks.register({
            name: "ctx",
            point: "prompt:submit",
            handler: () => Effect.succeed({ action: "inject_context", message: "The user is on call." } as const)
          })
          const unregister = yield* hooks.register({
            name: "gone",
            point: "prompt:submit",
            handler: () => Effect.succeed({ action: "deny", reason: "should not run" } as const)
          })
          yield* unregister
          yield* hooks.register({
            name: "guard",
            point: "tool:pre",
            handler: () => Effect.succeed({ action: "ask_user", prompt: "Really add?" } as const)
          })
        }),
      [
        (prompt) => ({
          text: prompt.content.some((m) => m.role === "system" && m.content === "The user is on call.") ? "seen" : "?",
          toolCalls: [{ name: "add", params: { a: 1, b: 1 } }]
        }),
        { text: "done" }
      ],
      ({ probe, sessions }) =>
        Effect.gen(function*() {
          const { sessionId } = yield* sessions.createSession()
          const turn = yield* sessions.sendMessage(sessionId, "go").pipe(Effect.forkChild)
          const request = yield* nextApproval(sessions, sessionId)
          assert.strictEqual(request.prompt, "Really add?")
          yield* sessions.resolveApproval(sessionId, request.requestId, "allow")
          assert.strictEqual(yield* Fiber.join(turn), "done")
          assert.deepStrictEqual(yield* Ref.get(probe.started), ["add"])
        })
    ))

  it.effect("registering the same handler twice for a session delivers once", () => {
    let calls = 0
    const registration = (sessionId: string): Hooks.Registration => ({
      name: "count",
      point: "provider:request",
      sessionId: sessionId as Hooks.HookInput["sessionId"],
      handler: () => Effect.sync(() => (calls++, { action: "continue" } as const))
    })
    return Effect.gen(function*() {
      const hooks = yield* Hooks.make
      yield* withLoop({ answers: [{ text: "a" }], hooks }, ({ sessions }) =>
        Effect.gen(function*() {
          const { sessionId } = yield* sessions.createSession()
          yield* hooks.register(registration(sessionId))
          yield* hooks.register(registration(sessionId))
          yield* sessions.sendMessage(sessionId, "go")
          assert.strictEqual(calls, 1)
        }))
    })
  })
})

/** One sub-agent, `ops`, over its own scripted model and the test tools. */
const opsAgent = (child: Testing.ScriptedModel, instruction: string) => (probe: Probe) =>
  Effect.map(toolsetFor(probe), (toolset) => ({
    ops: {
      description: "does operations",
      options: {
        instruction,
        model: { provider: "scripted", model: "child", service: child.service },
        toolsets: [toolset]
      }
    }
  }))

describe("sub-agents", () => {
  it.effect("delegate runs a child agent whose approvals reach the parent's clients", () =>
    Effect.gen(function*() {
      const child = yield* Testing.model([
        { toolCalls: [{ name: "deploy", params: { target: "child" } }] },
        { text: "child finished" }
      ])
      yield* withLoop({
        answers: [
          { toolCalls: [{ name: "delegate", params: { agent: "ops", task: "ship it" } }] },
          (prompt) => ({ text: `parent got ${JSON.stringify(prompt.content.at(-1)?.content)}` })
        ],
        agents: opsAgent(child, "You ship.")
      }, ({ probe, sessions }) =>
        Effect.gen(function*() {
          const { sessionId } = yield* sessions.createSession()
          const events = yield* eventsOf(sessions, sessionId).pipe(Effect.forkChild)
          const turn = yield* sessions.sendMessage(sessionId, "go").pipe(Effect.forkChild)
          const request = yield* nextApproval(sessions, sessionId)
          assert.include(request.prompt, "[ops]")
          yield* sessions.resolveApproval(sessionId, request.requestId, "allow")
          assert.include(yield* Fiber.join(turn), "child finished")
          assert.deepStrictEqual(yield* Ref.get(probe.started), ["deploy:child"])
          const seen = tags(yield* Fiber.join(events))
          assert.includeMembers(seen, ["delegate:agent_spawned", "delegate:agent_completed"])
        }))
    }))

  it.effect("cancelling the parent cancels its child", () =>
    Effect.gen(function*() {
      const child = yield* Testing.model([{ toolCalls: [{ name: "wait", params: { name: "child" } }] }])
      yield* withLoop({
        answers: [{ toolCalls: [{ name: "delegate", params: { agent: "ops", task: "wait" } }] }],
        agents: opsAgent(child, "You wait.")
      }, ({ probe, sessions }) =>
        Effect.gen(function*() {
          const { sessionId } = yield* sessions.createSession()
          const turn = yield* sessions.sendMessage(sessionId, "go").pipe(Effect.flip, Effect.forkChild)
          while ((yield* Ref.get(probe.started)).length < 1) yield* Effect.yieldNow
          yield* sessions.cancelSession(sessionId, "immediate")
          assert.strictEqual((yield* Fiber.join(turn))._tag, "TurnCancelled")
          assert.deepStrictEqual(yield* Ref.get(probe.interrupted), ["child"])
        }))
    }))
})
