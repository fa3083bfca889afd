/**
 * Between the transcript's messages (the origin's shape) and `effect/ai`'s
 * `Prompt`, in both directions.
 */
import { Prompt } from "effect/ai"
import type { Message, ToolCall } from "../Transcript.ts"
import { toolCallName } from "../Transcript.ts"

type Part = { readonly type: "text"; readonly text: string } | {
  readonly type: "tool-call"
  readonly id: string
  readonly name: string
  readonly params: unknown
}

const textOf = (content: Message["content"]): string => {
  if (typeof content === "string") return content
  if (content === null) return ""
  return content
    .map((block) => typeof block.text === "string" ? block.text : "")
    .filter((text) => text.length > 0)
    .join("\n")
}

/** The arguments of a call as an object, whether they were stored as JSON text or as data. */
const argumentsOf = (call: ToolCall): unknown => {
  const raw = "tool" in call ? call.arguments : call.function.arguments
  if (typeof raw !== "string") return raw ?? {}
  try {
    return JSON.parse(raw)
  } catch {
    return { input: raw }
  }
}

const looksLikeFailure = (content: string): boolean => /^(error|cancelled|denied)\b/i.test(content)

/**
 * The prompt for a provider call: the bundle's instruction and any injected
 * context as system messages, then the conversation.
 */
export const toPrompt = (
  instruction: string,
  injected: ReadonlyArray<string>,
  messages: ReadonlyArray<Message>
): Prompt.Prompt => {
  const encoded: Array<Prompt.MessageEncoded> = []
  if (instruction.trim().length > 0) encoded.push({ role: "system", content: instruction })
  for (const message of messages) {
    switch (message.role) {
      case "user": {
        encoded.push({ role: "user", content: [{ type: "text", text: textOf(message.content) }] })
        break
      }
      case "assistant": {
        const parts: Array<Part> = []
        const text = textOf(message.content)
        if (text.length > 0) parts.push({ type: "text", text })
        for (const call of message.tool_calls ?? []) {
          parts.push({ type: "tool-call", id: call.id, name: toolCallName(call), params: argumentsOf(call) })
        }
        if (parts.length > 0) encoded.push({ role: "assistant", content: parts })
        break
      }
      case "tool": {
        const content = textOf(message.content)
        encoded.push({
          role: "tool",
          content: [{
            type: "tool-result",
            id: message.tool_call_id ?? "",
            name: message.name ?? "",
            isFailure: looksLikeFailure(content),
            result: content
          }]
        })
        break
      }
      default:
        break
    }
  }
  for (const context of injected) encoded.push({ role: "system", content: context })
  return Prompt.make(encoded)
}

/** A tool's result as transcript text: strings as they are, anything else as JSON. */
export const resultText = (result: unknown): string => {
  if (typeof result === "string") return result
  try {
    return JSON.stringify(result) ?? "null"
  } catch {
    return String(result)
  }
}
