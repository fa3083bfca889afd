/**
 * What applications need to test code that uses the backend: a scripted
 * engine whose turns the test controls step by step, and layers that run the
 * whole backend in memory (under `TestClock` when used from `it.effect`).
 *
 * @since 0.1.0
 */
import { Deferred, Duration, Effect, Layer, Stream } from "effect"
import { AiError, LanguageModel } from "effect/ai"
import type { Prompt, Response } from "effect/ai"
import type { AgentSession, ApprovalRequest, TurnContext } from "./AgentSession.ts"
import * as BundleLoader from "./BundleLoader.ts"
import * as CwdGuard from "./CwdGuard.ts"
import * as SessionBackend from "./SessionBackend.ts"
import * as SessionEvent from "./SessionEvent.ts"
import * as TranscriptStore from "./TranscriptStore.ts"

/**
 * One step of a scripted turn. A step that succeeds with a string sets the
 * turn's answer; the backend's graceful cancel is checked between steps.
 */
export type Step = (turn: TurnContext) => Effect.Effect<string | void, unknown>

/** The steps of one turn, chosen from its prompt (and turn number, session id …). */
export type Script = (prompt: string, turn: TurnContext) => ReadonlyArray<Step>

/** Answers `text`. */
export const reply = (text: string): Step => () => Effect.succeed(text)

/** Streams `deltas` as one text block (`content_block:start|delta|end`), sleeping `every` on the Clock before each delta; answers their concatenation. */
export const stream =
  (deltas: ReadonlyArray<string>, options: { readonly every?: Duration.Input } = {}): Step => (turn) =>
    Effect.gen(function*() {
      const index = 0
      yield* turn.emit(SessionEvent.ContentBlockStart, { index, blockType: "text" })
      for (const delta of deltas) {
        if (options.every !== undefined) yield* Effect.sleep(options.every)
        yield* turn.emit(SessionEvent.ContentBlockDelta, { index, delta })
      }
      const text = deltas.join("")
      yield* turn.emit(SessionEvent.ContentBlockEnd, { index, text })
      return text
    })

/**
 * Calls a tool as an orchestrator would: adds the assistant's tool call to the
 * history, emits `tool:pre`, runs `run`, adds the tool's result (or its error)
 * to the history, emits `tool:post` or `tool:error`, and checkpoints the transcript.
 */
export const toolCall = (
  tool: string,
  args: unknown,
  run: Effect.Effect<unknown, unknown> = Effect.succeed("ok")
): Step =>
(turn) =>
  Effect.gen(function*() {
    const toolCallId = `call_${turn.turn}_${tool}`
    yield* turn.history.append([{
      role: "assistant",
      content: null,
      tool_calls: [{ id: toolCallId, tool, arguments: args }]
    }])
    yield* turn.emit(SessionEvent.ToolPre, { toolCallId, tool, arguments: args })
    const exit = yield* Effect.exit(run)
    const content = exit._tag === "Success" ? JSON.stringify(exit.value ?? null) : `Error: ${String(exit.cause)}`
    yield* turn.history.append([{ role: "tool", tool_call_id: toolCallId, name: tool, content }])
    yield* exit._tag === "Success"
      ? turn.emit(SessionEvent.ToolPost, { toolCallId, tool, result: exit.value })
      : turn.emit(SessionEvent.ToolError, { toolCallId, tool, error: String(exit.cause) })
    yield* turn.checkpoint
  })

/** Asks for approval; answers `"approved:<choice>"` or `"denied:<choice>"`. */
export const approval = (request: ApprovalRequest): Step => (turn) =>
  Effect.map(
    turn.requestApproval(request),
    (decision) => `${decision.approved ? "approved" : "denied"}:${decision.choice}`
  )

/** Waits until the test completes `deferred`. */
export const awaitDeferred = (deferred: Deferred.Deferred<void>): Step => () => Deferred.await(deferred)

/** Completes `deferred`, so the test knows the turn got here. */
export const signal = (deferred: Deferred.Deferred<void>): Step => () =>
  Effect.asVoid(Deferred.succeed(deferred, undefined))

/** Sleeps on the Clock. */
export const sleep = (duration: Duration.Input): Step => () => Effect.sleep(duration)

/** Fails the turn with `error` (the sender gets `TurnFailed` with it as the cause). */
export const fail = (error: unknown): Step => () => Effect.fail(error)

/** Runs any effect as a step. */
export const effect = (f: (turn: TurnContext) => Effect.Effect<string | void, unknown>): Step => f

/** The default script: every turn answers its prompt. */
export const echo: Script = (prompt) => [reply(prompt)]

/** An engine that runs `script`, checking for a graceful cancel between steps. */
export const engine = (script: Script): AgentSession => ({
  runTurn: (prompt, turn) => {
    const steps = script(prompt, turn)
    const run = (i: number, answer: string): Effect.Effect<string, unknown> =>
      i === steps.length
        ? Effect.succeed(answer)
        : Effect.flatMap(
          i === 0 ? steps[0](turn) : Effect.andThen(turn.boundary, () => steps[i](turn)),
          (result) => run(i + 1, typeof result === "string" ? result : answer)
        )
    return steps.length === 1 ? Effect.map(steps[0](turn), answerOf) : run(0, "")
  }
})

const answerOf = (result: string | void): string => typeof result === "string" ? result : ""

/** Options of the scripted bundle. */
export interface BundleOptions {
  readonly name?: string | undefined
  readonly version?: string | undefined
  readonly script?: Script | undefined
}

/** A prepared bundle whose sessions run `script` (default: echo). */
export const bundle = (options: BundleOptions = {}): BundleLoader.PreparedBundle => {
  const agent = engine(options.script ?? echo)
  return {
    name: options.name ?? "scripted",
    version: options.version ?? "0.0.0",
    createSession: () => Effect.succeed(agent)
  }
}

/** A `BundleLoader` whose only (default) bundle is the scripted one. */
export const layerBundleLoader = (options: BundleOptions = {}): Layer.Layer<BundleLoader.BundleLoader> =>
  BundleLoader.layerBundles([bundle(options)])

/** What `layer` accepts: the scripted bundle, the backend's options, and where transcripts go. */
export interface LayerOptions extends BundleOptions {
  /** A prepared bundle to use instead of the scripted one (`Orchestrator.prepare(...)` for the real loop). */
  readonly prepared?: BundleLoader.PreparedBundle | undefined
  readonly backend?: SessionBackend.Options | undefined
  /** Default: a fresh in-memory store. Pass `TranscriptStore.layerFileNode({ home })` to test on disk. */
  readonly store?: Layer.Layer<TranscriptStore.TranscriptStore> | undefined
}

/**
 * The whole backend over the scripted engine (in memory unless `store` says
 * otherwise), with its `TranscriptStore`, so a test can read what was written.
 */
export const layer = (
  options: LayerOptions = {}
): Layer.Layer<SessionBackend.SessionBackend | TranscriptStore.TranscriptStore> => {
  const store = options.store ?? TranscriptStore.layerMemory()
  return SessionBackend.layerWith(options.backend ?? {}).pipe(
    Layer.provide([
      options.prepared !== undefined ? BundleLoader.layerBundles([options.prepared]) : layerBundleLoader(options),
      CwdGuard.layer
    ]),
    Layer.provideMerge(store)
  )
}

/** One answer of a scripted model: streamed text, then the tool calls it asks for. */
export interface ModelAnswer {
  readonly text?: string | undefined
  readonly toolCalls?:
    | ReadonlyArray<{ readonly name: string; readonly params: unknown; readonly id?: string }>
    | undefined
  /** Waits this long on the Clock before answering (a slow provider). */
  readonly delay?: Duration.Input | undefined
  /** Fails the call with this reason instead of answering. */
  readonly error?: AiError.AiErrorReason | undefined
}

/** A scripted model and the prompts it was sent. */
export interface ScriptedModel {
  readonly service: LanguageModel.LanguageModel
  /** Every prompt the model was sent, in order. */
  readonly prompts: Effect.Effect<ReadonlyArray<Prompt.Prompt>>
}

/**
 * A `LanguageModel` that gives `answers` in order, one per provider call (an
 * answer may be a function of the prompt). Past the last answer it fails with
 * an `InvalidRequestError`, so a test that forgot one fails loudly.
 */
export const model = (
  answers: ReadonlyArray<ModelAnswer | ((prompt: Prompt.Prompt) => ModelAnswer)>
): Effect.Effect<ScriptedModel> =>
  Effect.gen(function*() {
    const prompts: Array<Prompt.Prompt> = []
    const partsOf = (answer: ModelAnswer): Array<Response.StreamPartEncoded> => {
      const parts: Array<Response.StreamPartEncoded> = []
      if (answer.text !== undefined) {
        parts.push({ type: "text-start", id: "t" })
        for (const delta of answer.text.match(/\S+\s*/g) ?? [answer.text]) {
          parts.push({ type: "text-delta", id: "t", delta })
        }
        parts.push({ type: "text-end", id: "t" })
      }
      ;(answer.toolCalls ?? []).forEach((call, i) =>
        parts.push({
          type: "tool-call",
          id: call.id ?? `call_${prompts.length}_${i}`,
          name: call.name,
          params: call.params
        })
      )
      parts.push({
        type: "finish",
        reason: (answer.toolCalls ?? []).length > 0 ? "tool-calls" : "stop",
        usage: { inputTokens: { total: 1 }, outputTokens: { total: 1 } }
      })
      return parts
    }
    const next = (prompt: Prompt.Prompt): Effect.Effect<Array<Response.StreamPartEncoded>, AiError.AiError> =>
      Effect.suspend(() => {
        const entry = answers[prompts.length]
        prompts.push(prompt)
        const fail = (reason: AiError.AiErrorReason) =>
          Effect.fail(AiError.make({ module: "Testing", method: "model", reason }))
        if (entry === undefined) {
          return fail(
            new AiError.InvalidRequestError({ description: `no scripted answer left for call ${prompts.length}` })
          )
        }
        const answer = typeof entry === "function" ? entry(prompt) : entry
        const wait = answer.delay === undefined ? Effect.void : Effect.sleep(answer.delay)
        return Effect.andThen(wait, answer.error !== undefined ? fail(answer.error) : Effect.succeed(partsOf(answer)))
      })
    const service = yield* LanguageModel.make({
      streamText: (options) => Stream.unwrap(Effect.map(next(options.prompt), Stream.fromIterable)),
      generateText: (options) =>
        Effect.map(next(options.prompt), (parts) =>
          parts.flatMap((part): Array<Response.PartEncoded> =>
            part.type === "text-delta"
              ? [{ type: "text", text: part.delta }]
              : part.type === "tool-call" || part.type === "finish"
              ? [part]
              : []
          ))
    })
    return {
      service,
      prompts: Effect.sync(() =>
        prompts.slice()
      )
    }
  })
