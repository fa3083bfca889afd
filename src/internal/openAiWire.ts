/**
 * The OpenAI Chat Completions wire format: the request body built from an
 * effect/ai `Prompt` and tools, and the mapping of HTTP statuses and error
 * objects to `AiError` reasons. Streaming responses are decoded in
 * `openAiStream.ts`.
 */
import { Duration, Redacted, Result, Schema } from "effect"
import type { JsonSchema } from "effect"
import { AiError, Tool } from "effect/ai"
import type { LanguageModel, Prompt, Response } from "effect/ai"
import { Base64 } from "effect/encoding"

/** Where a request went, for error descriptions (never its headers). */
export interface RequestInfo {
  readonly method: string
  readonly url: string
}

// -----------------------------------------------------------------------------
// request
// -----------------------------------------------------------------------------

type UserContent = { readonly type: "text"; readonly text: string } | {
  readonly type: "image_url"
  readonly image_url: { readonly url: string }
}

/** A wire tool call, as the assistant made it. */
export interface WireToolCall {
  readonly id: string
  readonly type: "function"
  readonly function: { readonly name: string; readonly arguments: string }
}

/** A wire chat message. */
export type ChatMessage =
  | { readonly role: "system"; readonly content: string }
  | { readonly role: "user"; readonly content: string | ReadonlyArray<UserContent> }
  | { readonly role: "assistant"; readonly content: string | null; readonly tool_calls?: ReadonlyArray<WireToolCall> }
  | { readonly role: "tool"; readonly tool_call_id: string; readonly content: string }

const jsonText = (value: unknown): string => {
  if (typeof value === "string") return value
  const text = JSON.stringify(value)
  return text === undefined ? "null" : text
}

const fileUrl = (part: Prompt.FilePart): string => {
  if (part.data instanceof URL) return part.data.href
  if (part.data instanceof Uint8Array) return `data:${part.mediaType};base64,${Base64.encode(part.data)}`
  return /^(?:https?|data):/i.test(part.data) ? part.data : `data:${part.mediaType};base64,${part.data}`
}

const unsupported = (description: string) => new AiError.InvalidUserInputError({ description })

const userContent = (
  parts: ReadonlyArray<Prompt.UserMessagePart>
): Result.Result<string | Array<UserContent>, AiError.AiErrorReason> => {
  const out: Array<UserContent> = []
  for (const part of parts) {
    if (part.type === "text") out.push({ type: "text", text: part.text })
    else if (part.mediaType.startsWith("image/")) out.push({ type: "image_url", image_url: { url: fileUrl(part) } })
    else {return Result.fail(
        unsupported(`OpenAI-compatible chat completions take image files only, not ${part.mediaType}`)
      )}
  }
  return Result.succeed(
    out.every((part) => part.type === "text") ? out.map((part) => part.type === "text" ? part.text : "").join("") : out
  )
}

const toolResultText = (part: Prompt.ToolResultPart): string => {
  const texts = part.modelOutput?.flatMap((output) => output.type === "text" ? [output.text] : []) ?? []
  return texts.length > 0 ? texts.join("\n") : jsonText(part.result)
}

/** The wire messages of a prompt. Reasoning and provider-executed parts are not sent back. */
export const toMessages = (prompt: Prompt.Prompt): Result.Result<Array<ChatMessage>, AiError.AiErrorReason> => {
  const messages: Array<ChatMessage> = []
  for (const message of prompt.content) {
    switch (message.role) {
      case "system":
        messages.push({ role: "system", content: message.content })
        break
      case "user": {
        const content = userContent(message.content)
        if (Result.isFailure(content)) return Result.fail(content.failure)
        messages.push({ role: "user", content: content.success })
        break
      }
      case "assistant": {
        let text = ""
        const calls: Array<WireToolCall> = []
        for (const part of message.content) {
          if (part.type === "text") text += part.text
          else if (part.type === "tool-call" && !part.providerExecuted) {
            calls.push({
              id: part.id,
              type: "function",
              function: { name: part.name, arguments: jsonText(part.params) }
            })
          }
        }
        if (text.length === 0 && calls.length === 0) break
        messages.push({
          role: "assistant",
          content: text.length > 0 ? text : null,
          ...(calls.length > 0 ? { tool_calls: calls } : {})
        })
        break
      }
      case "tool":
        for (const part of message.content) {
          if (part.type === "tool-result" && !part.providerExecuted) {
            messages.push({ role: "tool", tool_call_id: part.id, content: toolResultText(part) })
          }
        }
        break
    }
  }
  return Result.succeed(messages)
}

/** A wire function tool. */
export interface WireTool {
  readonly type: "function"
  readonly function: {
    readonly name: string
    readonly description?: string
    readonly parameters: unknown
  }
}

/** An object schema with no `properties` (a tool without parameters) gets an empty one, which servers expect. */
const withProperties = (schema: JsonSchema.JsonSchema): JsonSchema.JsonSchema =>
  schema.type === "object" && schema.properties === undefined ? { ...schema, properties: {} } : schema

/** The wire tools; provider-defined tools (`openai.web_search` …) have no Chat Completions form. */
export const toTools = (tools: ReadonlyArray<Tool.Any>): Result.Result<Array<WireTool>, AiError.AiErrorReason> => {
  const out: Array<WireTool> = []
  for (const tool of tools) {
    if (Tool.isProviderDefined(tool)) {
      return Result.fail(
        new AiError.ToolConfigurationError({
          toolName: tool.name,
          description: "provider-defined tools are not supported by OpenAI-compatible chat completions"
        })
      )
    }
    const description = Tool.getDescription(tool)
    out.push({
      type: "function",
      function: {
        name: tool.name,
        ...(description === undefined ? {} : { description }),
        parameters: withProperties(Tool.getJsonSchema(tool))
      }
    })
  }
  return Result.succeed(out)
}

/** The wire `tool_choice`. (`oneOf` is applied by LanguageModel, which passes only those tools.) */
export const toToolChoice = (choice: LanguageModel.ToolChoice<string>): unknown => {
  if (typeof choice === "string") return choice
  if ("tool" in choice) return { type: "function", function: { name: choice.tool } }
  return choice.mode ?? "auto"
}

/** What goes into a request besides the prompt. */
export interface RequestSettings {
  readonly model: string
  readonly temperature?: number | undefined
  readonly maxTokens?: number | undefined
}

/** The JSON body of `POST /chat/completions`. */
export const requestBody = (
  settings: RequestSettings,
  options: LanguageModel.ProviderOptions,
  stream: boolean
): Result.Result<Record<string, unknown>, AiError.AiErrorReason> =>
  Result.gen(function*() {
    const messages = yield* toMessages(options.prompt)
    const tools = yield* toTools(options.tools)
    const format = options.responseFormat
    return {
      model: settings.model,
      messages,
      ...(tools.length > 0 ? { tools, tool_choice: toToolChoice(options.toolChoice) } : {}),
      ...(settings.temperature === undefined ? {} : { temperature: settings.temperature }),
      ...(settings.maxTokens === undefined ? {} : { max_tokens: settings.maxTokens }),
      ...(format.type === "json"
        ? {
          response_format: {
            type: "json_schema",
            json_schema: { name: format.objectName, schema: Tool.getJsonSchemaFromSchema(format.schema) }
          }
        }
        : {}),
      stream,
      ...(stream ? { stream_options: { include_usage: true } } : {})
    }
  })

// -----------------------------------------------------------------------------
// responses
// -----------------------------------------------------------------------------

const Nullish = <S extends Schema.Top>(schema: S) => Schema.optional(Schema.NullOr(schema))

/** Usage as servers report it (in the last chunk, or the completion). */
export const WireUsage = Schema.Struct({
  prompt_tokens: Nullish(Schema.Number),
  completion_tokens: Nullish(Schema.Number),
  prompt_tokens_details: Nullish(Schema.Struct({ cached_tokens: Nullish(Schema.Number) })),
  completion_tokens_details: Nullish(Schema.Struct({ reasoning_tokens: Nullish(Schema.Number) }))
})

const WireFunction = Schema.Struct({ name: Nullish(Schema.String), arguments: Nullish(Schema.String) })

/** One streamed chunk (`chat.completion.chunk`); lenient, since servers differ. */
export const WireChunk = Schema.Struct({
  id: Nullish(Schema.String),
  model: Nullish(Schema.String),
  created: Nullish(Schema.Number),
  choices: Nullish(Schema.Array(Schema.Struct({
    delta: Nullish(Schema.Struct({
      content: Nullish(Schema.String),
      reasoning_content: Nullish(Schema.String),
      reasoning: Nullish(Schema.String),
      tool_calls: Nullish(Schema.Array(Schema.Struct({
        index: Nullish(Schema.Number),
        id: Nullish(Schema.String),
        function: Nullish(WireFunction)
      })))
    })),
    finish_reason: Nullish(Schema.String)
  }))),
  usage: Nullish(WireUsage),
  error: Nullish(Schema.Unknown)
})

/** A whole completion (`chat.completion`), the answer to `stream: false`. */
export const WireCompletion = Schema.Struct({
  id: Nullish(Schema.String),
  model: Nullish(Schema.String),
  created: Nullish(Schema.Number),
  choices: Nullish(Schema.Array(Schema.Struct({
    message: Nullish(Schema.Struct({
      content: Nullish(Schema.String),
      reasoning_content: Nullish(Schema.String),
      reasoning: Nullish(Schema.String),
      tool_calls: Nullish(Schema.Array(Schema.Struct({ id: Nullish(Schema.String), function: Nullish(WireFunction) })))
    })),
    finish_reason: Nullish(Schema.String)
  }))),
  usage: Nullish(WireUsage),
  error: Nullish(Schema.Unknown)
})

/** The effect/ai usage of a wire usage. */
export const toUsage = (usage: typeof WireUsage.Type | null | undefined): typeof Response.Usage.Encoded => {
  const int = (value: number | null | undefined) => typeof value === "number" ? Math.round(value) : undefined
  const input = int(usage?.prompt_tokens)
  const cached = int(usage?.prompt_tokens_details?.cached_tokens)
  const output = int(usage?.completion_tokens)
  const reasoning = int(usage?.completion_tokens_details?.reasoning_tokens)
  return {
    inputTokens: {
      ...(input === undefined ? {} : { total: input }),
      ...(cached === undefined ? {} : { cacheRead: cached })
    },
    outputTokens: {
      ...(output === undefined ? {} : { total: output }),
      ...(reasoning === undefined ? {} : { reasoning })
    }
  }
}

/** The effect/ai finish reason of a wire `finish_reason`. */
export const toFinishReason = (reason: string | null | undefined, hasToolCalls: boolean): Response.FinishReason => {
  switch (reason) {
    case "stop":
    case "eos":
      return hasToolCalls ? "tool-calls" : "stop"
    case "length":
      return "length"
    case "tool_calls":
    case "function_call":
      return "tool-calls"
    case "content_filter":
      return "content-filter"
    case null:
    case undefined:
      return hasToolCalls ? "tool-calls" : "unknown"
    default:
      return "other"
  }
}

/** Parses a tool call's accumulated arguments (empty means no arguments). */
export const parseArguments = (name: string, text: string): Result.Result<unknown, AiError.AiErrorReason> => {
  if (text.trim().length === 0) return Result.succeed({})
  try {
    return Result.succeed(JSON.parse(text))
  } catch {
    return Result.fail(
      new AiError.InvalidOutputError({
        description: `the arguments of tool call "${name}" are not valid JSON: ${text.slice(0, 200)}`
      })
    )
  }
}

/** The encoded parts of a whole completion. */
export const completionParts = (
  completion: typeof WireCompletion.Type
): Result.Result<Array<Response.PartEncoded>, AiError.AiErrorReason> =>
  Result.gen(function*() {
    const parts: Array<Response.PartEncoded> = [{
      type: "response-metadata",
      ...(completion.id == null ? {} : { id: completion.id }),
      ...(completion.model == null ? {} : { modelId: completion.model }),
      ...(completion.created == null ? {} : { timestamp: new Date(completion.created * 1000).toISOString() })
    }]
    const choice = completion.choices?.[0]
    const message = choice?.message
    const reasoning = message?.reasoning_content ?? message?.reasoning
    if (reasoning != null && reasoning.length > 0) parts.push({ type: "reasoning", text: reasoning })
    if (message?.content != null && message.content.length > 0) parts.push({ type: "text", text: message.content })
    const calls = message?.tool_calls ?? []
    for (const [index, call] of calls.entries()) {
      const name = call.function?.name
      if (name == null) return yield* Result.fail(invalidResponse(`tool call #${index} has no function name`))
      const params = yield* parseArguments(name, call.function?.arguments ?? "")
      parts.push({ type: "tool-call", id: call.id ?? `${completion.id ?? "call"}_${index}`, name, params })
    }
    parts.push({
      type: "finish",
      reason: toFinishReason(choice?.finish_reason, calls.length > 0),
      usage: toUsage(completion.usage)
    })
    return parts
  })

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/** An `AiError` of this provider. */
export const aiError = (method: string, reason: AiError.AiErrorReason): AiError.AiError =>
  AiError.make({ module: "OpenAiCompatible", method, reason })

/** A response the provider could not read. */
export const invalidResponse = (description: string) => new AiError.InvalidResponseError({ description })

/** The fields of an error body or in-band error, whatever shape the server uses. */
export interface ErrorInfo {
  readonly message: string | undefined
  readonly type: string | undefined
  readonly code: string | number | undefined
  readonly param: string | undefined
}

const field = (record: unknown, key: string): unknown =>
  typeof record === "object" && record !== null ? (record as Record<string, unknown>)[key] : undefined

const stringField = (record: unknown, key: string): string | undefined => {
  const value = field(record, key)
  return typeof value === "string" && value.length > 0 ? value : undefined
}

/** Reads `{ error: { message, type, code, param } }`, `{ error: "…" }`, `{ message }` or `{ detail }`. */
export const errorInfo = (payload: unknown): ErrorInfo => {
  const inner = field(payload, "error")
  const source = typeof inner === "object" && inner !== null ? inner : payload
  const code = field(source, "code")
  return {
    message: (typeof inner === "string" ? inner : undefined) ?? stringField(source, "message") ??
      stringField(source, "detail") ?? stringField(payload, "message"),
    type: stringField(source, "type"),
    code: typeof code === "string" || typeof code === "number" ? code : undefined,
    param: stringField(source, "param")
  }
}

/** Reads an error response body, JSON or not. */
export const errorInfoOfBody = (body: string): ErrorInfo => {
  try {
    return errorInfo(JSON.parse(body))
  } catch {
    const text = body.trim()
    return {
      message: text.length > 0 ? text.slice(0, 500) : undefined,
      type: undefined,
      code: undefined,
      param: undefined
    }
  }
}

const metadataOf = (info: ErrorInfo): AiError.ProviderMetadata => ({
  error: { message: info.message ?? null, type: info.type ?? null, code: info.code ?? null, param: info.param ?? null }
})

/** `retry-after-ms`, `retry-after` in seconds or as an HTTP date. */
export const retryAfter = (
  headers: Readonly<Record<string, string | undefined>>,
  nowMillis: number
): Duration.Duration | undefined => {
  const ms = Number(headers["retry-after-ms"])
  if (headers["retry-after-ms"] !== undefined && Number.isFinite(ms) && ms >= 0) return Duration.millis(ms)
  const value = headers["retry-after"]
  if (value === undefined || value.trim() === "") return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds) && seconds >= 0) return Duration.seconds(seconds)
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Duration.millis(Math.max(0, date - nowMillis))
}

/** What is known about a failed response. */
export interface FailedResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  readonly request: RequestInfo
  readonly hasApiKey: boolean
  readonly nowMillis: number
}

const fromInfo = (
  status: number | undefined,
  info: ErrorInfo,
  description: string,
  context: {
    readonly http?: typeof AiError.HttpContext.Type
    readonly retryAfter?: Duration.Duration | undefined
    readonly hasApiKey: boolean
  }
): AiError.AiErrorReason => {
  const common = { metadata: metadataOf(info), ...(context.http === undefined ? {} : { http: context.http }) }
  const label = `${info.type ?? ""} ${info.code ?? ""}`.toLowerCase()
  if (label.includes("insufficient_quota")) return new AiError.QuotaExhaustedError(common)
  if (status === 429 || label.includes("rate_limit")) {
    return new AiError.RateLimitError({
      ...common,
      ...(context.retryAfter === undefined ? {} : { retryAfter: context.retryAfter })
    })
  }
  if (status === 401 || (status === undefined && /auth|api_key/.test(label))) {
    return new AiError.AuthenticationError({
      ...common,
      kind: context.hasApiKey ? "InvalidKey" : "MissingKey",
      description
    })
  }
  if (status === 403) {
    return new AiError.AuthenticationError({ ...common, kind: "InsufficientPermissions", description })
  }
  if (label.includes("content_filter") || label.includes("content_policy")) {
    return new AiError.ContentPolicyError({ ...common, description })
  }
  if (
    (status !== undefined && [400, 404, 409, 413, 415, 422].includes(status)) ||
    (status === undefined && /invalid_request|context_length|badrequest|not_found/.test(label))
  ) {
    return new AiError.InvalidRequestError({ ...common, description, ...(info.param ? { parameter: info.param } : {}) })
  }
  if (status === undefined || status >= 500) return new AiError.InternalProviderError({ ...common, description })
  return new AiError.UnknownError({ ...common, description })
}

/** The reason of a non-2xx response: 401/403 authentication, 429 rate limit, 4xx invalid request, 5xx provider. */
export const reasonOfResponse = (response: FailedResponse): AiError.AiErrorReason => {
  const info = errorInfoOfBody(response.body)
  const description = AiError.buildErrorDescription({
    status: response.status,
    message: info.message,
    method: response.request.method,
    url: response.request.url,
    errorCode: info.code ?? null,
    errorType: info.type ?? null,
    requestId: response.headers["x-request-id"] ?? null,
    body: response.body
  })
  return fromInfo(response.status, info, description, {
    http: { response: { status: response.status, headers: response.headers }, body: response.body.slice(0, 4096) },
    retryAfter: retryAfter(response.headers, response.nowMillis),
    hasApiKey: response.hasApiKey
  })
}

/**
 * The reason of an error object sent inside a 200 stream. A numeric `code`
 * (vLLM sends the HTTP status there) maps like a status; otherwise the
 * type/code words decide, and anything else is a provider error.
 */
export const reasonOfInBandError = (payload: unknown, request: RequestInfo, hasApiKey: boolean) => {
  const info = errorInfo(payload)
  const status = typeof info.code === "number" && info.code >= 400 && info.code < 600 ? info.code : undefined
  const description =
    `${info.message ?? "the server sent an error"} (in the stream of ${request.method} ${request.url})` +
    (info.code !== undefined ? ` [code: ${info.code}]` : info.type !== undefined ? ` [type: ${info.type}]` : "")
  return fromInfo(status, info, description, { hasApiKey })
}

/**
 * Replaces the API key wherever a server echoes it (some put the key they
 * rejected in their error message), so it cannot leave the provider.
 */
export const makeScrubber = (apiKey: Redacted.Redacted<string> | undefined): (text: string) => string => {
  const secret = apiKey === undefined ? "" : Redacted.value(apiKey)
  return secret.length === 0
    ? (text) => text
    : (text) => text.includes(secret) ? text.split(secret).join("<redacted>") : text
}

/** A connection failure: the request could not be sent or its response not read. */
export const networkError = (
  request: RequestInfo,
  reason: "TransportError" | "EncodeError" | "InvalidUrlError",
  description: string
) => new AiError.NetworkError({ reason, method: request.method, url: request.url, description })
