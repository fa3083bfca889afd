/**
 * Decoding a streamed Chat Completions response: text from the wire, split
 * into Server-Sent Events (comments, CRLF, events split across chunks or
 * several in one chunk), each `data:` decoded as a `chat.completion.chunk`
 * and turned into effect/ai stream parts.
 */
import { Result, Schema } from "effect"
import type { AiError, Response } from "effect/ai"
import { Sse } from "effect/encoding"
import type { RequestInfo } from "./openAiWire.ts"
import {
  invalidResponse,
  networkError,
  parseArguments,
  reasonOfInBandError,
  toFinishReason,
  toUsage,
  WireChunk
} from "./openAiWire.ts"

type Part = Response.StreamPartEncoded
type Outcome = Result.Result<Array<Part>, AiError.AiErrorReason>

interface PendingCall {
  id: string | undefined
  name: string | undefined
  arguments: string
  started: boolean
}

const decodeChunk = Schema.decodeUnknownResult(WireChunk)

const isNullish = (u: unknown): u is null | undefined => u === undefined || u === null
const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)
const maybeString = (u: unknown) => isNullish(u) || typeof u === "string"
const maybeNumber = (u: unknown) => isNullish(u) || typeof u === "number"
const maybeRecordOf = (u: unknown, key: string) => isNullish(u) || (isRecord(u) && maybeNumber(u[key]))

const looksLikeUsage = (u: unknown) =>
  isRecord(u) && maybeNumber(u.prompt_tokens) && maybeNumber(u.completion_tokens) &&
  maybeRecordOf(u.prompt_tokens_details, "cached_tokens") &&
  maybeRecordOf(u.completion_tokens_details, "reasoning_tokens")

const looksLikeCall = (u: unknown) =>
  isRecord(u) && maybeNumber(u.index) && maybeString(u.id) &&
  (isNullish(u.function) || (isRecord(u.function) && maybeString(u.function.name) && maybeString(u.function.arguments)))

const looksLikeChoice = (u: unknown) => {
  if (!isRecord(u) || !maybeString(u.finish_reason)) return false
  const delta = u.delta
  if (isNullish(delta)) return true
  if (!isRecord(delta) || !maybeString(delta.content) || !maybeString(delta.reasoning_content)) return false
  if (!maybeString(delta.reasoning)) return false
  return isNullish(delta.tool_calls) || (Array.isArray(delta.tool_calls) && delta.tool_calls.every(looksLikeCall))
}

/**
 * The common shape of a chunk, checked by hand: the schema's decode costs
 * more than the rest of the stream's handling, so it only judges what this
 * does not recognise (and every chunk that carries an error).
 */
const looksLikeChunk = (u: unknown): u is typeof WireChunk.Type =>
  isRecord(u) && maybeString(u.id) && maybeString(u.model) && maybeNumber(u.created) && isNullish(u.error) &&
  (isNullish(u.usage) || looksLikeUsage(u.usage)) &&
  (isNullish(u.choices) || (Array.isArray(u.choices) && u.choices.every(looksLikeChoice)))

/** A stateful decoder for one response stream. */
export interface StreamDecoder {
  /** Feeds decoded text; returns the parts it completes. */
  readonly feed: (text: string) => Outcome
  /** The input ended: closes open blocks, emits the tool calls and the `finish` part. */
  readonly end: () => Outcome
  /** Whether `data: [DONE]` was seen (nothing after it matters). */
  readonly isDone: () => boolean
}

/** Starts decoding one response to `request`; `scrub` cleans every event's data first. */
export const makeStreamDecoder = (
  request: RequestInfo,
  hasApiKey: boolean,
  scrub: (text: string) => string
): StreamDecoder => {
  const events: Array<Sse.Event> = []
  const parser = Sse.makeParser((event) => {
    // `retry:` lines only matter to EventSource reconnection
    if (event._tag === "Event") events.push(event)
  })
  let done = false
  let metadataSent = false
  let responseId: string | undefined
  let textOpen: string | undefined
  let reasoningOpen: string | undefined
  let blocks = 0
  let finishReason: string | null | undefined
  let usage: typeof WireChunk.Type["usage"]
  const calls: Array<PendingCall> = []
  let flushedCalls = 0

  const closeText = (parts: Array<Part>) => {
    if (textOpen !== undefined) parts.push({ type: "text-end", id: textOpen })
    textOpen = undefined
  }
  const closeReasoning = (parts: Array<Part>) => {
    if (reasoningOpen !== undefined) parts.push({ type: "reasoning-end", id: reasoningOpen })
    reasoningOpen = undefined
  }

  /** Ends the params of every call not yet ended and emits its `tool-call` part. */
  const flushCalls = (parts: Array<Part>): AiError.AiErrorReason | undefined => {
    for (; flushedCalls < calls.length; flushedCalls++) {
      const call = calls[flushedCalls]
      if (call === undefined) continue
      if (call.name === undefined || call.id === undefined) {
        return invalidResponse(`tool call #${flushedCalls} ended without a function name`)
      }
      if (!call.started) parts.push({ type: "tool-params-start", id: call.id, name: call.name })
      parts.push({ type: "tool-params-end", id: call.id })
      const params = parseArguments(call.name, call.arguments)
      if (Result.isFailure(params)) return params.failure
      parts.push({ type: "tool-call", id: call.id, name: call.name, params: params.success })
    }
    return undefined
  }

  const onChunk = (chunk: typeof WireChunk.Type, parts: Array<Part>): AiError.AiErrorReason | undefined => {
    if (chunk.error != null) return reasonOfInBandError(chunk, request, hasApiKey)
    if (!metadataSent && (chunk.id != null || chunk.model != null)) {
      metadataSent = true
      responseId = chunk.id ?? undefined
      parts.push({
        type: "response-metadata",
        ...(chunk.id == null ? {} : { id: chunk.id }),
        ...(chunk.model == null ? {} : { modelId: chunk.model }),
        ...(chunk.created == null ? {} : { timestamp: new Date(chunk.created * 1000).toISOString() })
      })
    }
    if (chunk.usage != null) usage = chunk.usage
    const choice = chunk.choices?.[0]
    if (choice === undefined) return undefined
    const delta = choice.delta
    const reasoning = delta?.reasoning_content ?? delta?.reasoning
    if (reasoning != null && reasoning.length > 0) {
      closeText(parts)
      if (reasoningOpen === undefined) {
        reasoningOpen = `reasoning-${blocks++}`
        parts.push({ type: "reasoning-start", id: reasoningOpen })
      }
      parts.push({ type: "reasoning-delta", id: reasoningOpen, delta: reasoning })
    }
    const content = delta?.content
    if (content != null && content.length > 0) {
      closeReasoning(parts)
      if (textOpen === undefined) {
        textOpen = `text-${blocks++}`
        parts.push({ type: "text-start", id: textOpen })
      }
      parts.push({ type: "text-delta", id: textOpen, delta: content })
    }
    for (const wire of delta?.tool_calls ?? []) {
      closeReasoning(parts)
      closeText(parts)
      const byId = wire.id == null ? -1 : calls.findIndex((call) => call.id === wire.id)
      const index = wire.index ?? (byId >= 0 ? byId : calls.length)
      if (index < flushedCalls) return invalidResponse(`tool call #${index} continued after the model finished`)
      const call = calls[index] ?? { id: undefined, name: undefined, arguments: "", started: false }
      calls[index] = call
      if (call.id === undefined) call.id = wire.id ?? `${responseId ?? "call"}_${index}`
      if (call.name === undefined && wire.function?.name != null) call.name = wire.function.name
      const piece = wire.function?.arguments ?? ""
      call.arguments += piece
      if (!call.started && call.name !== undefined) {
        call.started = true
        parts.push({ type: "tool-params-start", id: call.id, name: call.name })
        if (call.arguments.length > 0) parts.push({ type: "tool-params-delta", id: call.id, delta: call.arguments })
      } else if (call.started && piece.length > 0) {
        parts.push({ type: "tool-params-delta", id: call.id, delta: piece })
      }
    }
    if (choice.finish_reason != null) {
      finishReason = choice.finish_reason
      closeReasoning(parts)
      closeText(parts)
      return flushCalls(parts)
    }
    return undefined
  }

  const onEvent = (event: Sse.Event, parts: Array<Part>): AiError.AiErrorReason | undefined => {
    const data = scrub(event.data.trim())
    if (data === "[DONE]") {
      done = true
      return undefined
    }
    if (data.length === 0) return undefined
    let json: unknown
    try {
      json = JSON.parse(data)
    } catch {
      return invalidResponse(`the event stream carried data that is not JSON: ${data.slice(0, 200)}`)
    }
    if (event.event === "error") return reasonOfInBandError(json, request, hasApiKey)
    if (looksLikeChunk(json)) return onChunk(json, parts)
    const chunk = decodeChunk(json)
    if (Result.isFailure(chunk)) {
      return invalidResponse(`unexpected chunk in the event stream: ${chunk.failure.message}`)
    }
    return onChunk(chunk.success, parts)
  }

  return {
    isDone: () => done,
    feed: (text) => {
      const failed = parser.feed(text)
      if (failed !== undefined) return Result.fail(invalidResponse(failed.message))
      const parts: Array<Part> = []
      while (events.length > 0 && !done) {
        const event = events.shift()
        if (event === undefined) break
        const error = onEvent(event, parts)
        if (error !== undefined) return Result.fail(error)
      }
      events.length = 0
      return Result.succeed(parts)
    },
    end: () => {
      if (!done && finishReason === undefined) {
        return Result.fail(
          networkError(request, "TransportError", "the response stream ended before the model finished")
        )
      }
      const parts: Array<Part> = []
      closeReasoning(parts)
      closeText(parts)
      const error = flushCalls(parts)
      if (error !== undefined) return Result.fail(error)
      parts.push({
        type: "finish",
        reason: toFinishReason(finishReason, calls.length > 0),
        usage: toUsage(usage)
      })
      return Result.succeed(parts)
    }
  }
}
