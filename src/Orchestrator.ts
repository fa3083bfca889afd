/**
 * The agent loop behind every real session: call the model through
 * `effect/ai`'s `LanguageModel`, run the tool calls it asks for in parallel,
 * feed the results back, and loop until it answers without tools. It emits the
 * domain's events, runs the hooks, asks for approvals, writes the transcript
 * after each tool result, and honours both cancel levels.
 *
 * @since 0.1.0
 */
import { Cause, Effect, Option, Schema, Stream } from "effect"
import type { Scope } from "effect"
import { AiError, LanguageModel, Tool } from "effect/ai"
import type { Response } from "effect/ai"
import type { Toolkit } from "effect/ai"
import type { AgentSession, TurnContext } from "./AgentSession.ts"
import type { CreateSessionOptions, PreparedBundle } from "./BundleLoader.ts"
import type * as Hooks from "./Hooks.ts"
import { runDelegate } from "./internal/delegate.ts"
import { resultText, toPrompt } from "./internal/promptCodec.ts"
import type { BundleLoadError } from "./SessionError.ts"
import * as SessionEvent from "./SessionEvent.ts"
import type { Message } from "./Transcript.ts"

/** The model a session talks to, with the names its events report. */
export interface Model {
  readonly provider: string
  readonly model: string
  readonly service: LanguageModel.LanguageModel
}

/** The result of one tool call, as the orchestrator reads it from a toolkit. */
export interface ToolOutcome {
  readonly result: unknown
  readonly isFailure: boolean
}

/**
 * Tools a session can call: the definitions the model sees and a way to run
 * a call. Build one from an `effect/ai` toolkit with `toolset`.
 */
export interface Toolset {
  readonly tools: Readonly<Record<string, Tool.Any>>
  readonly run: (name: string, params: unknown, toolCallId: string) => Effect.Effect<ToolOutcome, unknown>
  /** A one-line description of a call, shown when it asks for approval. */
  readonly describe?: ((name: string, params: unknown) => string) | undefined
}

/** Tools of an `effect/ai` toolkit whose handlers are provided (`yield* toolkit` with its handler layer). */
export const toolset = <Tools extends Record<string, Tool.Any>>(
  toolkit: Toolkit.WithHandler<Tools>,
  describe?: (name: string, params: unknown) => string
): Toolset => ({
  tools: toolkit.tools,
  describe,
  run: (name, params, toolCallId) =>
    toolkit.handle(name, params as Tool.ParametersEncoded<Tools[string]>, toolCallId).pipe(
      Effect.flatMap((results) => Stream.runLast(Stream.filter(results, (result) => !result.preliminary))),
      Effect.map((last) =>
        Option.match(last, {
          onNone: () => ({ result: "Error: the tool returned nothing", isFailure: true }),
          onSome: (result) => ({ result: result.encodedResult, isFailure: result.isFailure })
        })
      )
    ) as Effect.Effect<ToolOutcome, unknown>
})

/** A sub-agent the model can hand a task to with the `delegate` tool. */
export interface SubAgent {
  readonly description: string
  /** The sub-agent's own options (instruction, model, tools); it has no sub-agents of its own. */
  readonly options: Omit<Options, "agents">
}

/** How sessions of a bundle behave. */
export interface Options {
  /** The system instruction (the bundle's Markdown body). */
  readonly instruction: string
  readonly model: Model
  readonly toolsets?: ReadonlyArray<Toolset> | undefined
  readonly hooks?: Hooks.Hooks["Service"] | undefined
  /** Provider calls per turn before the turn fails; default 50. */
  readonly maxIterations?: number | undefined
  /** Tool calls of one batch that run at once; default all of them. */
  readonly toolConcurrency?: number | "unbounded" | undefined
  readonly agents?: Readonly<Record<string, SubAgent>> | undefined
}

/** The loop ran `maxIterations` provider calls without a final answer. */
export class IterationLimitReached extends Schema.TaggedError<IterationLimitReached>()("IterationLimitReached", {
  limit: Schema.Int
}) {
  override get message() {
    return `the model asked for tools ${this.limit} times without answering; the turn was stopped`
  }
}

/** A hook denied the prompt. */
export class PromptDenied extends Schema.TaggedError<PromptDenied>()("PromptDenied", {
  reason: Schema.String
}) {
  override get message() {
    return `the prompt was denied: ${this.reason}`
  }
}

interface Call {
  readonly id: string
  readonly name: string
  readonly params: unknown
}

/** The name of the tool that hands a task to a sub-agent. */
export const delegateToolName = "delegate"

const delegateTool = (agents: Readonly<Record<string, SubAgent>>): Tool.Any =>
  Tool.make(delegateToolName, {
    description: `Hand a self-contained task to a sub-agent and get its answer. Agents: ${
      Object.entries(agents).map(([name, agent]) => `${name} (${agent.description})`).join("; ")
    }`,
    parameters: Schema.Struct({
      agent: Schema.Literals(Object.keys(agents) as [string, ...Array<string>]),
      task: Schema.String
    }),
    success: Schema.String
  }) as Tool.Any

const describeDefault = (name: string, params: unknown): string => {
  const text = resultText(params)
  return `Run the tool ${name}(${text.length > 200 ? `${text.slice(0, 200)}…` : text})`
}

const needsApproval = (tool: Tool.Any, params: unknown, id: string): Effect.Effect<boolean> => {
  const rule = tool.needsApproval
  if (rule === undefined || typeof rule === "boolean") return Effect.succeed(rule === true)
  const answer = rule(params, { toolCallId: id, messages: [] })
  return typeof answer === "boolean" ? Effect.succeed(answer) : answer
}

const errorText = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.squash(cause)
  return error instanceof Error ? error.message : String(error)
}

/** An agent session running the loop with `options`. */
export const make = (options: Options): AgentSession => {
  const agents = options.agents ?? {}
  const toolsets = options.toolsets ?? []
  const byName = new Map<string, Toolset>()
  for (const set of toolsets) for (const name of Object.keys(set.tools)) byName.set(name, set)
  const tools: Record<string, Tool.Any> = {}
  for (const set of toolsets) Object.assign(tools, set.tools)
  if (Object.keys(agents).length > 0) tools[delegateToolName] = delegateTool(agents)
  const toolkit = { tools, handle: () => Effect.die("the orchestrator runs tool calls itself") }
  const maxIterations = options.maxIterations ?? 50
  const hooks = options.hooks

  const runHook = (turn: TurnContext, input: Omit<Hooks.HookInput, "sessionId" | "turn">) =>
    hooks === undefined
      ? Effect.succeed<Hooks.HookOutcome>({ denied: undefined, data: input.data, injected: [] })
      : hooks.run({ ...input, sessionId: turn.sessionId, turn: turn.turn }, turn)

  /** Runs one call to its end: hooks, approval, the tool, then its result in the history and on disk. */
  const runCall = (turn: TurnContext, call: Call, injected: Array<string>) =>
    Effect.gen(function*() {
      const finish = (content: string, event: Effect.Effect<void>) =>
        Effect.andThen(
          turn.history.append([{ role: "tool", tool_call_id: call.id, name: call.name, content }]),
          Effect.andThen(event, turn.checkpoint)
        )
      const refuse = (why: string) =>
        finish(
          `Error: ${why}`,
          turn.emit(SessionEvent.ToolError, { toolCallId: call.id, tool: call.name, error: why })
        )
      const pre = yield* runHook(turn, { point: "tool:pre", tool: call.name, toolCallId: call.id, data: call.params })
      injected.push(...pre.injected)
      if (pre.denied !== undefined) return yield* refuse(`denied: ${pre.denied}`)
      const params = pre.data
      const tool = tools[call.name]
      if (tool === undefined) {
        return yield* refuse(`there is no tool named '${call.name}'; the tools are: ${Object.keys(tools).join(", ")}`)
      }
      const set = byName.get(call.name)
      if (yield* needsApproval(tool, params, call.id)) {
        const decision = yield* turn.requestApproval({
          prompt: (set?.describe ?? describeDefault)(call.name, params)
        })
        if (!decision.approved) {
          return yield* refuse(
            `denied: the user ${decision.timedOut ? "did not answer in time" : `chose '${decision.choice}'`}`
          )
        }
      }
      yield* turn.emit(SessionEvent.ToolPre, { toolCallId: call.id, tool: call.name, arguments: params })
      const exit = yield* Effect.exit(
        set !== undefined
          ? set.run(call.name, params, call.id)
          : runDelegate(agents, params, turn, make).pipe(
            Effect.map((answer): ToolOutcome => ({ result: answer, isFailure: false }))
          )
      )
      const outcome: ToolOutcome = exit._tag === "Success"
        ? exit.value
        : { result: `Error: ${errorText(exit.cause)}`, isFailure: true }
      const post = yield* runHook(turn, {
        point: "tool:post",
        tool: call.name,
        toolCallId: call.id,
        data: outcome.result,
        isFailure: outcome.isFailure
      })
      injected.push(...post.injected)
      const content = resultText(post.data)
      return yield* finish(
        content,
        outcome.isFailure
          ? turn.emit(SessionEvent.ToolError, { toolCallId: call.id, tool: call.name, error: content })
          : turn.emit(SessionEvent.ToolPost, { toolCallId: call.id, tool: call.name, result: post.data })
      )
    })

  /** One provider call, streamed into events; returns the text and the tool calls it asked for. */
  const callModel = (turn: TurnContext, iteration: number, messages: ReadonlyArray<Message>, injected: Array<string>) =>
    Effect.gen(function*() {
      let block = -1
      let text = ""
      let blockText = ""
      let thinking = ""
      const calls: Array<Call> = []
      let finishReason = "unknown"
      let inputTokens: number | undefined
      let outputTokens: number | undefined
      // the toolkit only lends the model its definitions: calls are run by `runCall`, so nothing is required
      const stream = LanguageModel.streamText({
        prompt: toPrompt(options.instruction, injected, messages),
        toolkit,
        disableToolCallResolution: true,
        toolCallValidation: "deferred"
      }) as Stream.Stream<
        Response.StreamPart<Record<string, Tool.Any>, "deferred">,
        AiError.AiError,
        LanguageModel.LanguageModel
      >
      yield* stream.pipe(
        Stream.provideService(LanguageModel.LanguageModel, options.model.service),
        Stream.runForEach((part) => {
          switch (part.type) {
            case "text-start":
              block++
              blockText = ""
              return turn.emit(SessionEvent.ContentBlockStart, { index: block, blockType: "text" })
            case "text-delta":
              blockText += part.delta
              text += part.delta
              return turn.emit(SessionEvent.ContentBlockDelta, { index: block, delta: part.delta })
            case "text-end":
              return turn.emit(SessionEvent.ContentBlockEnd, { index: block, text: blockText })
            case "reasoning-delta":
              thinking += part.delta
              return turn.emit(SessionEvent.ThinkingDelta, { delta: part.delta })
            case "reasoning-end": {
              const whole = thinking
              thinking = ""
              return turn.emit(SessionEvent.ThinkingFinal, { text: whole })
            }
            case "tool-call":
              if (part.providerExecuted !== true) calls.push({ id: part.id, name: part.name, params: part.params })
              return Effect.void
            case "finish":
              finishReason = part.reason
              inputTokens = part.usage.inputTokens.total
              outputTokens = part.usage.outputTokens.total
              return Effect.void
            case "error":
              return Effect.fail(
                AiError.make({
                  module: "Orchestrator",
                  method: "streamText",
                  reason: new AiError.UnknownError({ description: resultText(part.error) })
                })
              )
            default:
              return Effect.void
          }
        }),
        Effect.tapError((error) =>
          turn.emit(SessionEvent.ProviderError, {
            turn: turn.turn,
            iteration,
            reason: AiError.isAiError(error) ? error.reason._tag : "UnknownError",
            error: error.message
          })
        )
      )
      yield* turn.emit(SessionEvent.ProviderResponse, {
        turn: turn.turn,
        iteration,
        finishReason,
        toolCalls: calls.length,
        ...(inputTokens === undefined ? {} : { inputTokens }),
        ...(outputTokens === undefined ? {} : { outputTokens })
      })
      return { text, calls }
    })

  const runTurn = (prompt: string, turn: TurnContext): Effect.Effect<string, unknown> =>
    Effect.gen(function*() {
      const injected: Array<string> = []
      const submitted = yield* runHook(turn, { point: "prompt:submit", data: prompt })
      if (submitted.denied !== undefined) return yield* new PromptDenied({ reason: submitted.denied })
      injected.push(...submitted.injected)
      for (let iteration = 1; iteration <= maxIterations; iteration++) {
        // graceful cancel: the tool batch already started has finished; stop before the next provider call
        if (iteration > 1) yield* turn.boundary
        const request = yield* runHook(turn, { point: "provider:request", data: undefined })
        if (request.denied !== undefined) return yield* new PromptDenied({ reason: request.denied })
        injected.push(...request.injected)
        yield* turn.emit(SessionEvent.ProviderRequest, {
          turn: turn.turn,
          iteration,
          provider: options.model.provider,
          model: options.model.model
        })
        const messages = yield* turn.history.messages
        const answer = yield* callModel(turn, iteration, messages, injected)
        if (answer.calls.length === 0) return answer.text
        yield* turn.history.append([{
          role: "assistant",
          content: answer.text.length > 0 ? answer.text : null,
          tool_calls: answer.calls.map((call) => ({ id: call.id, tool: call.name, arguments: call.params }))
        }])
        yield* Effect.forEach(answer.calls, (call) => runCall(turn, call, injected), {
          concurrency: options.toolConcurrency ?? "unbounded",
          discard: true
        })
      }
      return yield* new IterationLimitReached({ limit: maxIterations })
    })

  return { runTurn }
}

/**
 * A prepared bundle whose sessions run the loop; `options` builds each
 * session's options (its tools know the session's working directory) in the
 * session's scope.
 */
export const prepare = (bundle: {
  readonly name: string
  readonly version: string
  readonly options: (session: CreateSessionOptions) => Effect.Effect<Options, BundleLoadError, Scope.Scope>
}): PreparedBundle => ({
  name: bundle.name,
  version: bundle.version,
  createSession: (session) => Effect.map(bundle.options(session), make)
})
