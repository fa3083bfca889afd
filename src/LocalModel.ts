/**
 * The offline model of the embedded default bundle: a small, deterministic
 * `LanguageModel` that needs no network and no key. It streams its answers
 * word by word and uses the session's tools when asked in plain words ("list
 * the files", "read notes.md", "write hello to notes.md", "run ls -la"), so a
 * fresh install shows the whole agent loop: streamed text, a tool call, an
 * approval. Configure a provider to talk to a real model.
 *
 * @since 0.1.0
 */
import { Effect, Layer, Stream } from "effect"
import { LanguageModel, Prompt } from "effect/ai"
import type { Response } from "effect/ai"

/** The name the model reports in `provider:request` events. */
export const name = "local-echo"

interface Intent {
  readonly tool: string
  readonly params: Record<string, unknown>
}

/** What the user asked for, if it is something the tools can do. */
export const intentOf = (text: string, tools: ReadonlySet<string>): Intent | undefined => {
  const candidates: Array<Intent | undefined> = [
    /\b(?:list|ls|show)\b.*\b(?:files?|folder|directory|dir)\b(?:\s+(?:in|of)\s+(\S+))?/i.test(text)
      ? { tool: "list_directory", params: { path: /\b(?:in|of)\s+(\S+)/i.exec(text)?.[1] ?? "." } }
      : undefined,
    ((m) => m ? { tool: "read_file", params: { path: m[1] } } : undefined)(/\b(?:read|open|cat)\s+(\S+)/i.exec(text)),
    ((m) => m ? { tool: "write_file", params: { path: m[2], content: `${m[1]}\n` } } : undefined)(
      /\bwrite\s+["“]?(.+?)["”]?\s+(?:to|into)\s+(\S+)/i.exec(text)
    ),
    ((m) => m ? { tool: "run_command", params: { command: m[1] } } : undefined)(
      /\b(?:run|execute)\s+[`"]?([^`"]+?)[`"]?\s*$/i.exec(text)
    ),
    ((m) => m ? { tool: "delegate", params: { agent: m[1], task: m[2] } } : undefined)(
      /\bask\s+(?:the\s+)?(\S+?)\s+agent\s+(?:to\s+)?(.+)$/i.exec(text)
    )
  ]
  return candidates.find((intent) => intent !== undefined && tools.has(intent.tool))
}

const words = (text: string): Array<string> => text.match(/\S+\s*/g) ?? [text]

const textParts = (id: string, text: string): Array<Response.StreamPartEncoded> => [
  { type: "text-start", id },
  ...words(text).map((delta): Response.StreamPartEncoded => ({ type: "text-delta", id, delta })),
  { type: "text-end", id }
]

const finish = (reason: "stop" | "tool-calls", input: number, output: number): Response.StreamPartEncoded => ({
  type: "finish",
  reason,
  usage: { inputTokens: { total: input }, outputTokens: { total: output } }
})

const clip = (text: string, max = 600): string => text.length > max ? `${text.slice(0, max)}…` : text

const lastText = (message: Prompt.Message | undefined): string => {
  if (message === undefined) return ""
  const content: string | ReadonlyArray<{ readonly type: string; readonly text?: string }> = message.content
  if (typeof content === "string") return content
  return content.map((part) => part.type === "text" ? part.text ?? "" : "").join("")
}

/** The parts of one answer to `prompt`, with `tools` available. */
export const respond = (prompt: Prompt.Prompt, tools: ReadonlySet<string>): Array<Response.StreamPartEncoded> => {
  const messages = prompt.content
  const last = messages.at(-1)
  const size = messages.length
  if (last?.role === "tool") {
    const summary = last.content.map((part) =>
      part.type === "tool-result"
        ? `${part.name} ${part.isFailure ? "failed" : "returned"}: ${
          clip(typeof part.result === "string" ? part.result : JSON.stringify(part.result))
        }`
        : ""
    ).join("\n")
    const text = `Done. ${summary}`
    return [...textParts("answer", text), finish("stop", size, words(text).length)]
  }
  const asked = lastText([...messages].reverse().find((message) => message.role === "user"))
  const intent = intentOf(asked, tools)
  if (intent !== undefined) {
    const intro = `I'll use ${intent.tool} for that.`
    return [
      ...textParts("intro", intro),
      { type: "tool-call", id: `call_${size}_${intent.tool}`, name: intent.tool, params: intent.params },
      finish("tool-calls", size, words(intro).length)
    ]
  }
  const text = `You said: ${asked}\n\n(This is the offline model of the default bundle. ` +
    `Ask me to list the files, read a file, write text to a file or run a command; ` +
    `set OPENAI_MODEL (and OPENAI_BASE_URL / OPENAI_API_KEY) to talk to a real model.)`
  return [...textParts("answer", text), finish("stop", size, words(text).length)]
}

/** The offline model as a `LanguageModel` service. */
export const make: Effect.Effect<LanguageModel.LanguageModel> = LanguageModel.make({
  streamText: (options) => Stream.fromIterable(respond(options.prompt, new Set(options.tools.map((t) => t.name)))),
  generateText: (options) =>
    Effect.succeed(
      respond(options.prompt, new Set(options.tools.map((t) => t.name))).flatMap((part): Array<
        Response.PartEncoded
      > => {
        if (part.type === "text-delta") return [{ type: "text", text: part.delta }]
        if (part.type === "tool-call" || part.type === "finish") return [part]
        return []
      })
    )
})

/** The offline model as the `LanguageModel` of a layer. */
export const layer: Layer.Layer<LanguageModel.LanguageModel> = Layer.effect(LanguageModel.LanguageModel, make)
