/**
 * A fake OpenAI-compatible server for tests and benchmarks: a real HTTP
 * server on 127.0.0.1 (port 0) that answers `POST /v1/chat/completions` with
 * scripted replies, streamed as Server-Sent Events when the request asks for
 * `stream: true` and as one JSON completion otherwise.
 *
 * ```ts
 * const fake = yield* FakeOpenAi.make
 * yield* fake.enqueue(FakeOpenAi.text("hello", { chunks: 3 }), FakeOpenAi.error(429, "slow down"))
 * // … point a provider at fake.url …
 * const [first] = yield* fake.requests
 * ```
 *
 * Replies are used in order, one per request. A request that finds the queue
 * empty gets a 500 whose message says so, so a test that forgot a reply fails
 * loudly.
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import * as Http from "node:http"

/** One tool call of a scripted answer. */
export interface ToolCallSpec {
  /** Defaults to `call_<n>`; `null` leaves the id out, as some local servers do. */
  readonly id?: string | null
  readonly name: string
  /** A JSON string is sent as is (even if invalid); anything else is JSON-encoded. */
  readonly arguments: unknown
}

/** Token counts reported in the final chunk (or the completion). */
export interface UsageSpec {
  readonly prompt_tokens: number
  readonly completion_tokens: number
}

/** What the fake answers to one request. Build them with the constructors below. */
export type Reply =
  | {
    readonly _tag: "Text"
    readonly text: string
    readonly chunks: number
    readonly reasoning: string | undefined
    readonly finishReason: string
    readonly usage: UsageSpec
  }
  | {
    readonly _tag: "ToolCalls"
    readonly calls: ReadonlyArray<ToolCallSpec>
    readonly chunks: number
    readonly text: string | undefined
    readonly usage: UsageSpec
  }
  | {
    readonly _tag: "HttpError"
    readonly status: number
    readonly message: string
    readonly type: string | undefined
    readonly code: string | undefined
    readonly headers: Readonly<Record<string, string>>
  }
  | { readonly _tag: "Stall"; readonly text: string; readonly afterChunks: number }
  | {
    readonly _tag: "StreamError"
    readonly text: string | undefined
    readonly message: string
    readonly type: string | undefined
    readonly code: string | number | undefined
  }
  | {
    readonly _tag: "Raw"
    readonly status: number
    readonly contentType: string
    readonly chunks: ReadonlyArray<string>
  }

const defaultUsage = (text: string): UsageSpec => ({
  prompt_tokens: 10,
  completion_tokens: Math.max(1, text.split(/\s+/).filter((word) => word.length > 0).length)
})

/** A streamed text answer, its content split into `chunks` deltas (default 1). */
export const text = (content: string, options?: {
  readonly chunks?: number
  /** Streamed first as `reasoning_content` deltas, as reasoning servers do. */
  readonly reasoning?: string
  /** The wire `finish_reason` (default `"stop"`). */
  readonly finishReason?: string
  readonly usage?: UsageSpec
}): Reply => ({
  _tag: "Text",
  text: content,
  chunks: Math.max(1, options?.chunks ?? 1),
  reasoning: options?.reasoning,
  finishReason: options?.finishReason ?? "stop",
  usage: options?.usage ?? defaultUsage(content)
})

/** A streamed tool-call answer; each call's arguments are split into `chunks` deltas (default 2). */
export const toolCalls = (calls: ReadonlyArray<ToolCallSpec>, options?: {
  readonly chunks?: number
  /** Text streamed before the calls. */
  readonly text?: string
  readonly usage?: UsageSpec
}): Reply => ({
  _tag: "ToolCalls",
  calls,
  chunks: Math.max(1, options?.chunks ?? 2),
  text: options?.text,
  usage: options?.usage ?? { prompt_tokens: 10, completion_tokens: 5 * calls.length }
})

/** An HTTP error with an OpenAI-style body `{ error: { message, type, code } }`. */
export const error = (status: number, message: string, options?: {
  readonly type?: string
  readonly code?: string
  /** Extra response headers, e.g. `{ "retry-after": "7" }`. */
  readonly headers?: Readonly<Record<string, string>>
}): Reply => ({
  _tag: "HttpError",
  status,
  message,
  type: options?.type,
  code: options?.code,
  headers: options?.headers ?? {}
})

/**
 * A stream that sends its first `afterChunks` events (default 1) of a text
 * answer and then nothing more, keeping the connection open until the client
 * goes away.
 */
export const stall = (options?: { readonly text?: string; readonly afterChunks?: number }): Reply => ({
  _tag: "Stall",
  text: options?.text ?? "partial answer that never ends",
  afterChunks: Math.max(0, options?.afterChunks ?? 1)
})

/** A stream that sends `text` (if any) and then an in-band `{ error: … }` event, then ends. */
export const streamError = (message: string, options?: {
  readonly text?: string
  readonly type?: string
  readonly code?: string | number
}): Reply => ({
  _tag: "StreamError",
  text: options?.text,
  message,
  type: options?.type ?? "server_error",
  code: options?.code
})

/** Exactly these bytes, each string one network write: for CRLF, comments, malformed data. */
export const raw = (chunks: ReadonlyArray<string>, options?: {
  readonly status?: number
  readonly contentType?: string
}): Reply => ({
  _tag: "Raw",
  status: options?.status ?? 200,
  contentType: options?.contentType ?? "text/event-stream",
  chunks
})

/** A request the fake received. */
export interface ReceivedRequest {
  readonly method: string
  /** The path with its query, e.g. `/v1/chat/completions`. */
  readonly path: string
  /** Lower-case header names. */
  readonly headers: Readonly<Record<string, string>>
  /** The parsed JSON body (the raw text when it is not JSON). */
  readonly body: unknown
}

/** The handle of a running fake server. */
export interface FakeOpenAi {
  /** The base URL to give a provider, e.g. `http://127.0.0.1:40123/v1`. */
  readonly url: string
  /** Queues replies, used one per request in order. */
  readonly enqueue: (...replies: ReadonlyArray<Reply>) => Effect.Effect<void>
  /** Every request received so far, oldest first. */
  readonly requests: Effect.Effect<ReadonlyArray<ReceivedRequest>>
  /** How many responses the client cut off by closing the connection before they ended. */
  readonly aborted: Effect.Effect<number>
  /** Replies queued and not used yet. */
  readonly pending: Effect.Effect<number>
  /** Waits until at least `count` requests have arrived. */
  readonly awaitRequests: (count: number) => Effect.Effect<void>
  /** Waits until at least `count` responses were cut off by the client. */
  readonly awaitAborted: (count: number) => Effect.Effect<void>
}

const sse = (payload: unknown): string => `data: ${typeof payload === "string" ? payload : JSON.stringify(payload)}\n\n`

const split = (value: string, pieces: number): Array<string> => {
  if (value.length === 0) return [""]
  const size = Math.ceil(value.length / pieces)
  const out: Array<string> = []
  for (let i = 0; i < value.length; i += size) out.push(value.slice(i, i + size))
  return out
}

const argumentsText = (value: unknown): string => typeof value === "string" ? value : JSON.stringify(value)

interface Completion {
  readonly id: string
  readonly model: string
  readonly created: number
}

const chunk = (meta: Completion, choices: ReadonlyArray<unknown>, usage?: UsageSpec) => ({
  id: meta.id,
  object: "chat.completion.chunk",
  created: meta.created,
  model: meta.model,
  choices,
  ...(usage === undefined ? {} : { usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } })
})

const delta = (meta: Completion, value: Record<string, unknown>, finishReason: string | null = null) =>
  chunk(meta, [{ index: 0, delta: value, finish_reason: finishReason }])

const textEvents = (meta: Completion, content: string, pieces: number, reasoning: string | undefined) => [
  sse(delta(meta, { role: "assistant", content: "" })),
  ...(reasoning === undefined ? [] : split(reasoning, pieces).map((r) => sse(delta(meta, { reasoning_content: r })))),
  ...(content.length === 0 ? [] : split(content, pieces).map((c) => sse(delta(meta, { content: c }))))
]

const callId = (call: ToolCallSpec, index: number): string | undefined =>
  call.id === null ? undefined : call.id ?? `call_${index + 1}`

/** The SSE events of a reply to a streaming request (`undefined` for HTTP errors). */
const streamEvents = (reply: Reply, meta: Completion, includeUsage: boolean): Array<string> | undefined => {
  const usage = (spec: UsageSpec) => includeUsage ? [sse(chunk(meta, [], spec))] : []
  switch (reply._tag) {
    case "Text":
      return [
        ...textEvents(meta, reply.text, reply.chunks, reply.reasoning),
        sse(delta(meta, {}, reply.finishReason)),
        ...usage(reply.usage),
        sse("[DONE]")
      ]
    case "ToolCalls":
      return [
        ...textEvents(meta, reply.text ?? "", reply.chunks, undefined),
        ...reply.calls.flatMap((call, index) => {
          const id = callId(call, index)
          return [
            sse(delta(meta, {
              tool_calls: [{
                index,
                ...(id === undefined ? {} : { id }),
                type: "function",
                function: { name: call.name, arguments: "" }
              }]
            })),
            ...split(argumentsText(call.arguments), reply.chunks).map((piece) =>
              sse(delta(meta, { tool_calls: [{ index, function: { arguments: piece } }] }))
            )
          ]
        }),
        sse(delta(meta, {}, "tool_calls")),
        ...usage(reply.usage),
        sse("[DONE]")
      ]
    case "Stall":
      return textEvents(meta, reply.text, 8, undefined).slice(0, reply.afterChunks)
    case "StreamError":
      return [
        ...(reply.text === undefined ? [] : textEvents(meta, reply.text, 1, undefined)),
        sse({ error: { message: reply.message, type: reply.type ?? null, code: reply.code ?? null } })
      ]
    case "Raw":
      return [...reply.chunks]
    case "HttpError":
      return undefined
  }
}

/** The JSON body of a reply to a non-streaming request. */
const completionBody = (reply: Reply, meta: Completion): unknown => {
  const base = { id: meta.id, object: "chat.completion", created: meta.created, model: meta.model }
  const withUsage = (usage: UsageSpec) => ({
    ...usage,
    total_tokens: usage.prompt_tokens + usage.completion_tokens
  })
  if (reply._tag === "ToolCalls") {
    return {
      ...base,
      choices: [{
        index: 0,
        message: {
          role: "assistant",
          content: reply.text ?? null,
          tool_calls: reply.calls.map((call, index) => ({
            ...(callId(call, index) === undefined ? {} : { id: callId(call, index) }),
            type: "function",
            function: { name: call.name, arguments: argumentsText(call.arguments) }
          }))
        },
        finish_reason: "tool_calls"
      }],
      usage: withUsage(reply.usage)
    }
  }
  const message = reply._tag === "Text" ? reply.text : ""
  return {
    ...base,
    choices: [{
      index: 0,
      message: {
        role: "assistant",
        content: message,
        ...(reply._tag === "Text" && reply.reasoning !== undefined ? { reasoning_content: reply.reasoning } : {})
      },
      finish_reason: reply._tag === "Text" ? reply.finishReason : "stop"
    }],
    usage: withUsage(reply._tag === "Text" ? reply.usage : defaultUsage(message))
  }
}

const errorBody = (message: string, type: string | undefined, code: string | number | undefined): string =>
  JSON.stringify({ error: { message, type: type ?? "invalid_request_error", param: null, code: code ?? null } })

/**
 * Starts the fake server for the current scope; closing the scope closes the
 * server and every open connection.
 */
export const make: Effect.Effect<FakeOpenAi, never, Scope.Scope> = Effect.gen(function*() {
  const queue: Array<Reply> = []
  const requests: Array<ReceivedRequest> = []
  let aborted = 0
  let closing = false
  let served = 0
  const listeners = new Set<() => void>()
  const changed = () => {
    for (const listener of [...listeners]) listener()
  }
  const awaitUntil = (ready: () => boolean): Effect.Effect<void> =>
    Effect.callback<void>((resume) => {
      if (ready()) return resume(Effect.void)
      const listener = () => {
        if (!ready()) return
        listeners.delete(listener)
        resume(Effect.void)
      }
      listeners.add(listener)
      return Effect.sync(() => listeners.delete(listener))
    })

  /** Writes the pieces one by one, each after the previous one was flushed, then maybe ends. */
  const writeAll = (response: Http.ServerResponse, pieces: ReadonlyArray<string>, end: boolean) => {
    const next = (index: number): void => {
      if (response.destroyed) return
      if (index >= pieces.length) {
        if (end) response.end()
        return
      }
      response.write(pieces[index], () => setImmediate(() => next(index + 1)))
    }
    next(0)
  }

  const answer = (reply: Reply | undefined, body: unknown, response: Http.ServerResponse) => {
    served++
    const meta: Completion = { id: `chatcmpl-fake-${served}`, model: "fake-model", created: 1_700_000_000 + served }
    if (reply === undefined) {
      response.writeHead(500, { "content-type": "application/json" })
      response.end(errorBody(`fakeOpenAi: no reply queued for request #${served}`, "server_error", undefined))
      return
    }
    if (reply._tag === "HttpError") {
      response.writeHead(reply.status, { "content-type": "application/json", ...reply.headers })
      response.end(errorBody(reply.message, reply.type, reply.code))
      return
    }
    const options = typeof body === "object" && body !== null ? body as Record<string, unknown> : {}
    if (reply._tag === "Raw") {
      response.writeHead(reply.status, { "content-type": reply.contentType, "cache-control": "no-cache" })
      writeAll(response, reply.chunks, true)
      return
    }
    if (options.stream !== true) {
      if (reply._tag === "Stall") {
        response.writeHead(200, { "content-type": "application/json" })
        response.flushHeaders()
        return
      }
      if (reply._tag === "StreamError") {
        response.writeHead(500, { "content-type": "application/json" })
        response.end(errorBody(reply.message, reply.type, reply.code))
        return
      }
      response.writeHead(200, { "content-type": "application/json" })
      response.end(JSON.stringify(completionBody(reply, meta)))
      return
    }
    const streamOptions = options.stream_options
    const includeUsage = typeof streamOptions === "object" && streamOptions !== null &&
      (streamOptions as Record<string, unknown>).include_usage === true
    response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
    response.flushHeaders()
    writeAll(response, streamEvents(reply, meta, includeUsage) ?? [], reply._tag !== "Stall")
  }

  const handle = (request: Http.IncomingMessage, response: Http.ServerResponse) => {
    const pieces: Array<Buffer> = []
    request.on("data", (piece: Buffer) => pieces.push(piece))
    request.on("end", () => {
      const text = Buffer.concat(pieces).toString("utf8")
      let body: unknown = text
      try {
        body = JSON.parse(text)
      } catch {
        // keep the raw text
      }
      const headers: Record<string, string> = {}
      for (const [name, value] of Object.entries(request.headers)) {
        if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value
      }
      const path = request.url ?? "/"
      requests.push({ method: request.method ?? "GET", path, headers, body })
      response.on("close", () => {
        if (!response.writableEnded && !closing) {
          aborted++
          changed()
        }
      })
      if (request.method !== "POST" || path.split("?")[0] !== "/v1/chat/completions") {
        response.writeHead(404, { "content-type": "application/json" })
        response.end(errorBody(`fakeOpenAi: no route for ${request.method} ${path}`, undefined, "not_found"))
      } else {
        answer(queue.shift(), body, response)
      }
      changed()
    })
  }

  const server = yield* Effect.acquireRelease(
    Effect.callback<Http.Server>((resume) => {
      const server = Http.createServer(handle)
      server.once("error", (cause) => resume(Effect.die(cause)))
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.callback<void>((resume) => {
        closing = true
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
  )
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0

  return {
    url: `http://127.0.0.1:${port}/v1`,
    enqueue: (...replies) => Effect.sync(() => void queue.push(...replies)),
    requests: Effect.sync(() => [...requests]),
    aborted: Effect.sync(() => aborted),
    pending: Effect.sync(() => queue.length),
    awaitRequests: (count) => awaitUntil(() => requests.length >= count),
    awaitAborted: (count) => awaitUntil(() => aborted >= count)
  }
})
