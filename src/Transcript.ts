/**
 * Transcripts: the message list of a session as the origin writes it in
 * `transcript.jsonl`, its JSONL codec, and the repair of orphaned tool calls.
 * Pure functions over message arrays, no I/O.
 *
 * @since 0.1.0
 */
import { Effect, Result, Schema } from "effect"
import { TranscriptCorrupt } from "./SessionError.ts"

/** Keeps every key a schema does not model, so what was read is written back unchanged. */
const Rest = [Schema.Record(Schema.String, Schema.Unknown)] as const

/** Who wrote a message. */
export const Role = Schema.Literals(["system", "developer", "user", "assistant", "tool"])
/** Who wrote a message. */
export type Role = typeof Role.Type

/** A tool call as the origin writes it: `{id, tool, arguments}`. */
export const OriginToolCall = Schema.StructWithRest(
  Schema.Struct({ id: Schema.String, tool: Schema.String, arguments: Schema.Unknown }),
  Rest
)
/** A tool call as the origin writes it: `{id, tool, arguments}`. */
export type OriginToolCall = typeof OriginToolCall.Type

/** A tool call in OpenAI's shape: `{id, type: "function", function: {name, arguments}}`, accepted when reading. */
export const OpenAiToolCall = Schema.StructWithRest(
  Schema.Struct({
    id: Schema.String,
    type: Schema.optionalKey(Schema.Literal("function")),
    function: Schema.StructWithRest(Schema.Struct({ name: Schema.String, arguments: Schema.Unknown }), Rest)
  }),
  Rest
)
/** A tool call in OpenAI's shape, accepted when reading. */
export type OpenAiToolCall = typeof OpenAiToolCall.Type

/** A tool call of an assistant message, in either shape; it is kept as it was read. */
export const ToolCall = Schema.Union([OriginToolCall, OpenAiToolCall])
/** A tool call of an assistant message, in either shape. */
export type ToolCall = typeof ToolCall.Type

/** The content of a message: text, nothing, or a list of blocks (kept as plain JSON objects). */
export const Content = Schema.Union([
  Schema.String,
  Schema.Null,
  Schema.Array(Schema.Record(Schema.String, Schema.Unknown))
])
/** The content of a message. */
export type Content = typeof Content.Type

/**
 * One transcript message. Keys it does not model (`thinking_block`,
 * `metadata`, `timestamp`, ...) are kept by decode and written back by encode.
 */
export const Message = Schema.StructWithRest(
  Schema.Struct({
    role: Role,
    content: Content,
    tool_calls: Schema.optionalKey(Schema.Array(ToolCall)),
    tool_call_id: Schema.optionalKey(Schema.String),
    name: Schema.optionalKey(Schema.String)
  }),
  Rest
)
/** One transcript message. */
export type Message = typeof Message.Type

const isMessage = Schema.is(Message)
const decodeMessage = Schema.decodeUnknownResult(Message)
const isOriginToolCall = Schema.is(OriginToolCall)

/** The name of the tool a call asks for, whichever shape the call has. */
export const toolCallName = (call: ToolCall): string => isOriginToolCall(call) ? call.tool : call.function.name

/** Why a repair answers orphaned tool calls. */
export const RepairReason = Schema.Literals(["cancelled", "interrupted by restart"])
/** Why a repair answers orphaned tool calls. */
export type RepairReason = typeof RepairReason.Type

/** A transcript read from JSONL; `tornLastLine` says an unfinished last line was dropped. */
export interface ParsedTranscript {
  readonly messages: Array<Message>
  readonly tornLastLine: boolean
}

/** An assistant tool call with no tool result after it. */
export interface OrphanedToolCall {
  readonly messageIndex: number
  readonly toolCallId: string
  readonly tool: string
}

/** The outcome of `repair`: the repaired messages, how many results were inserted and how many dropped. */
export interface Repaired {
  readonly messages: ReadonlyArray<Message>
  readonly inserted: number
  readonly dropped: number
}

const detailLength = 240

const oneLine = (text: string): string => {
  const flat = text.replace(/\s+/g, " ").trim()
  return flat.length > detailLength ? `${flat.slice(0, detailLength)}...` : flat
}

const parseJson = (line: string): Result.Result<unknown, string> => {
  try {
    return Result.succeed(JSON.parse(line))
  } catch (error) {
    return Result.fail(error instanceof Error ? error.message : String(error))
  }
}

/**
 * Reads a `transcript.jsonl`: one JSON message per line, blank lines ignored.
 * A last line that is not valid JSON (a writer that crashed mid-append) is
 * dropped and reported as `tornLastLine`; any other bad line fails with
 * `TranscriptCorrupt` naming its 1-based line number. Messages are kept
 * exactly as read, unknown keys and key order included.
 */
export const parseJsonl = (text: string, sessionId: string): Effect.Effect<ParsedTranscript, TranscriptCorrupt> =>
  Effect.suspend((): Effect.Effect<ParsedTranscript, TranscriptCorrupt> => {
    const lines = text.split("\n")
    let last = lines.length - 1
    while (last >= 0 && lines[last]!.trim() === "") last--
    const messages: Array<Message> = []
    for (let index = 0; index <= last; index++) {
      const line = lines[index]!
      if (line.trim() === "") continue
      const json = parseJson(line)
      if (Result.isFailure(json)) {
        if (index === last) return Effect.succeed({ messages, tornLastLine: true })
        return Effect.fail(
          new TranscriptCorrupt({ sessionId, line: index + 1, detail: oneLine(`invalid JSON: ${json.failure}`) })
        )
      }
      if (looksLikeMessage(json.success) || isMessage(json.success)) {
        messages.push(json.success)
        continue
      }
      const decoded = decodeMessage(json.success)
      const why = Result.isFailure(decoded) ? decoded.failure.message : "rejected by the message schema"
      return Effect.fail(
        new TranscriptCorrupt({ sessionId, line: index + 1, detail: oneLine(`not a message: ${why}`) })
      )
    }
    return Effect.succeed({ messages, tornLastLine: false })
  })

const roles: ReadonlySet<unknown> = new Set(Role.literals)
const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)
const isToolCall = (u: unknown): boolean =>
  isRecord(u) && typeof u.id === "string" && "arguments" in u
    ? typeof u.tool === "string"
    : isRecord(u) && typeof u.id === "string" && isRecord(u.function) && typeof u.function.name === "string" &&
      "arguments" in u.function && (u.type === undefined || u.type === "function")

/**
 * The fast path of `parseJsonl`: a hand-written check of the common shapes,
 * several times cheaper than the schema on long transcripts. It accepts only
 * what `Message` accepts; anything it does not recognise goes to the schema.
 */
const looksLikeMessage = (u: unknown): u is Message => {
  if (!isRecord(u) || !roles.has(u.role) || !("content" in u)) return false
  const content = u.content
  if (!(typeof content === "string" || content === null || (Array.isArray(content) && content.every(isRecord)))) {
    return false
  }
  if (u.tool_calls !== undefined && !(Array.isArray(u.tool_calls) && u.tool_calls.every(isToolCall))) return false
  if (u.tool_call_id !== undefined && typeof u.tool_call_id !== "string") return false
  return u.name === undefined || typeof u.name === "string"
}

/** Writes messages as JSONL: one message per line, each line ending in a newline. */
export const toJsonl = (messages: ReadonlyArray<Message>): string =>
  messages.map((message) => `${JSON.stringify(message)}\n`).join("")

/**
 * The tool calls of assistant messages that have no tool result (a `tool`
 * message with the call's id) anywhere after them, in transcript order.
 */
export const findOrphanedToolCalls = (messages: ReadonlyArray<Message>): Array<OrphanedToolCall> => {
  const answered = new Set<string>()
  const orphans: Array<OrphanedToolCall> = []
  for (let index = messages.length - 1; index >= 0; index--) {
    const message = messages[index]!
    if (message.role === "tool" && message.tool_call_id !== undefined) {
      answered.add(message.tool_call_id)
    } else if (message.role === "assistant" && message.tool_calls !== undefined) {
      const calls = message.tool_calls
      for (let call = calls.length - 1; call >= 0; call--) {
        const toolCall = calls[call]!
        if (!answered.has(toolCall.id)) {
          orphans.push({ messageIndex: index, toolCallId: toolCall.id, tool: toolCallName(toolCall) })
        }
      }
    }
  }
  return orphans.reverse()
}

const reasonText: Record<RepairReason, string> = {
  "cancelled": "was cancelled",
  "interrupted by restart": "was interrupted by a restart of the server"
}

/** The synthetic error result that answers an orphaned tool call. */
export const syntheticToolResult = (
  orphan: Pick<OrphanedToolCall, "toolCallId" | "tool">,
  reason: RepairReason
): Message => ({
  role: "tool",
  tool_call_id: orphan.toolCallId,
  name: orphan.tool,
  content: `Error: the call of tool '${orphan.tool}' ${reasonText[reason]} before it returned a result.`
})

/**
 * Makes a transcript acceptable to providers again: every orphaned tool call
 * gets one synthetic error result saying why, inserted after its assistant
 * message (and after the results already following it, in the owner's call
 * order), and every tool result without an earlier call is dropped.
 * Idempotent; a valid transcript is returned as it is, with 0 inserted and 0 dropped.
 */
export const repair = (messages: ReadonlyArray<Message>, reason: RepairReason): Repaired => {
  const called = new Set<string>()
  const kept: Array<Message> = []
  let dropped = 0
  for (const message of messages) {
    if (message.role === "tool") {
      if (message.tool_call_id === undefined || !called.has(message.tool_call_id)) {
        dropped++
        continue
      }
    } else if (message.role === "assistant" && message.tool_calls !== undefined) {
      for (const call of message.tool_calls) called.add(call.id)
    }
    kept.push(message)
  }
  const orphans = findOrphanedToolCalls(kept)
  if (orphans.length === 0) return { messages: dropped === 0 ? messages : kept, inserted: 0, dropped }
  const byOwner = new Map<number, Array<OrphanedToolCall>>()
  for (const orphan of orphans) {
    const owned = byOwner.get(orphan.messageIndex)
    if (owned === undefined) byOwner.set(orphan.messageIndex, [orphan])
    else owned.push(orphan)
  }
  const repaired: Array<Message> = []
  let index = 0
  while (index < kept.length) {
    repaired.push(kept[index]!)
    const owned = byOwner.get(index)
    index++
    if (owned === undefined) continue
    while (index < kept.length && kept[index]!.role === "tool") repaired.push(kept[index++]!)
    for (const orphan of owned) repaired.push(syntheticToolResult(orphan, reason))
  }
  return { messages: repaired, inserted: orphans.length, dropped }
}
