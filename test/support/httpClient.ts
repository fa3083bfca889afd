import { Effect, Layer, Redacted } from "effect"
import type { Scope } from "effect"
import { SessionBackend, Testing } from "effect-session-backend"
import * as SessionServer from "../../src/SessionServer.ts"

/** A running test server: where it listens and its token. */
export interface TestServer {
  readonly url: string
  readonly token: string
}

/** The token of the test servers. */
export const testToken = "test-token-0123456789"

/**
 * The real server on 127.0.0.1, on a free port, over the in-memory backend of
 * `Testing.layer(options)`; it stops with the scope.
 */
export const serve = (
  options: Testing.LayerOptions = {}
): Effect.Effect<TestServer, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const layer = SessionServer.layer({ port: 0, token: Redacted.make(testToken) }).pipe(
      Layer.provide(Testing.layer(options))
    )
    const context = yield* Layer.build(layer)
    const url = yield* SessionServer.url.pipe(Effect.provide(context))
    return { url, token: testToken }
  })

/** The server and its backend (for the few checks that look behind the API). */
export const serveWithBackend = (
  options: Testing.LayerOptions = {}
): Effect.Effect<TestServer & { readonly backend: SessionBackend.Service }, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const layer = SessionServer.layer({ port: 0, token: Redacted.make(testToken) }).pipe(
      Layer.provideMerge(Testing.layer(options))
    )
    const context = yield* Layer.build(layer)
    const url = yield* SessionServer.url.pipe(Effect.provide(context))
    const backend = yield* Effect.service(SessionBackend.SessionBackend).pipe(Effect.provide(context))
    return { url, token: testToken, backend }
  })

/** An answer as the test sees it. */
export interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  /** The body as a JSON object (empty when it is not one). */
  readonly json: Readonly<Record<string, unknown>>
  /** The body as a JSON array (empty when it is not one). */
  readonly array: ReadonlyArray<Readonly<Record<string, unknown>>>
}

/** What `call` sends: the token (default the server's; `null` for none), a JSON body or a raw one, more headers. */
export interface CallOptions {
  readonly token?: string | null
  readonly body?: unknown
  readonly rawBody?: string
  readonly headers?: Record<string, string>
}

/** One HTTP request with `fetch`, read to the end. */
export const call = (
  server: TestServer,
  method: string,
  path: string,
  options: CallOptions = {}
): Effect.Effect<Answer> =>
  Effect.promise(async (signal) => {
    const token = options.token === undefined ? server.token : options.token
    const headers: Record<string, string> = { ...options.headers }
    if (token !== null) headers.authorization = `Bearer ${token}`
    let body: string | undefined
    if (options.rawBody !== undefined) body = options.rawBody
    else if (options.body !== undefined) body = JSON.stringify(options.body)
    if (body !== undefined) headers["content-type"] ??= "application/json"
    const response = await fetch(`${server.url}${path}`, { method, headers, body: body ?? null, signal })
    const text = await response.text()
    let json: unknown = undefined
    try {
      json = text === "" ? undefined : JSON.parse(text)
    } catch {
      json = undefined
    }
    return {
      status: response.status,
      headers: response.headers,
      text,
      json: typeof json === "object" && json !== null && !Array.isArray(json) ? json as Record<string, unknown> : {},
      array: Array.isArray(json) ? json as Array<Record<string, unknown>> : []
    }
  })

/** One Server-Sent Events message; a comment has only `comment`. */
export interface SseMessage {
  readonly id?: string
  readonly event?: string
  readonly data?: string
  readonly comment?: string
}

/** An open event stream. */
export interface SseConnection {
  readonly status: number
  readonly headers: Headers
  /** The next message (comments included), or `undefined` when the server ended the stream. */
  readonly next: Effect.Effect<SseMessage | undefined>
  /** The next message that is not a comment. */
  readonly nextEvent: Effect.Effect<SseMessage | undefined>
  /** Drops the connection, as a network failure would. */
  readonly close: Effect.Effect<void>
}

const parseBlock = (block: string): SseMessage => {
  const message: { id?: string; event?: string; data?: string; comment?: string } = {}
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) message.comment = line.slice(1).trim()
    else if (line.startsWith("id: ")) message.id = line.slice(4)
    else if (line.startsWith("event: ")) message.event = line.slice(7)
    else if (line.startsWith("data: ")) {
      message.data = message.data === undefined
        ? line.slice(6)
        : `${message.data}\n${line.slice(6)}`
    }
  }
  return message
}

/** Opens an event stream with `fetch` and reads it message by message; it is dropped with the scope. */
export const connect = (
  server: TestServer,
  method: string,
  path: string,
  options: CallOptions = {}
): Effect.Effect<SseConnection, never, Scope.Scope> =>
  Effect.gen(function*() {
    const controller = new AbortController()
    yield* Effect.addFinalizer(() => Effect.sync(() => controller.abort()))
    const token = options.token === undefined ? server.token : options.token
    const headers: Record<string, string> = { accept: "text/event-stream", ...options.headers }
    if (token !== null) headers.authorization = `Bearer ${token}`
    const body = options.body === undefined ? null : JSON.stringify(options.body)
    if (body !== null) headers["content-type"] = "application/json"
    const response = yield* Effect.promise(() =>
      fetch(`${server.url}${path}`, { method, headers, body, signal: controller.signal })
    )
    const reader = response.body?.getReader()
    const decoder = new TextDecoder()
    let buffer = ""
    let done = false
    const next: Effect.Effect<SseMessage | undefined> = Effect.promise(async () => {
      while (true) {
        const end = buffer.indexOf("\n\n")
        if (end >= 0) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          return parseBlock(block)
        }
        if (done || reader === undefined) return undefined
        try {
          const chunk = await reader.read()
          if (chunk.done) done = true
          else buffer += decoder.decode(chunk.value, { stream: true })
        } catch {
          done = true
        }
      }
    })
    const nextEvent: Effect.Effect<SseMessage | undefined> = Effect.flatMap(
      next,
      (message) => message !== undefined && message.comment !== undefined ? nextEvent : Effect.succeed(message)
    )
    return {
      status: response.status,
      headers: response.headers,
      next,
      nextEvent,
      close: Effect.sync(() => controller.abort())
    }
  })
