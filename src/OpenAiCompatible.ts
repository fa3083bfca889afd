/**
 * A `LanguageModel` for any server that speaks the OpenAI Chat Completions
 * API (`POST {baseUrl}/chat/completions`): OpenAI itself, vLLM, Ollama,
 * llama.cpp, LM Studio … Answers are streamed with Server-Sent Events and
 * mapped to effect/ai stream parts; failures become `AiError`s with the
 * provider's message. The API key is sent only as an `Authorization: Bearer`
 * header, stays `Redacted` everywhere else, and is absent from errors, logs
 * and spans.
 *
 * ```ts
 * const Model = OpenAiCompatible.layer({ baseUrl: "http://127.0.0.1:11434/v1", model: "qwen3:8b" })
 *   .pipe(Layer.provide(NodeHttpClient.layerUndici))
 * ```
 *
 * @since 0.1.0
 */
import { Clock, Config, Duration, Effect, Layer, Option, Redacted, Result, Schema, Stream } from "effect"
import { LanguageModel } from "effect/ai"
import type { AiError, Response } from "effect/ai"
import { Headers, HttpClient, HttpClientRequest } from "effect/http"
import type { HttpClientError, HttpClientResponse } from "effect/http"
import { makeStreamDecoder } from "./internal/openAiStream.ts"
import {
  aiError,
  completionParts,
  invalidResponse,
  makeScrubber,
  networkError,
  reasonOfInBandError,
  reasonOfResponse,
  requestBody,
  WireCompletion
} from "./internal/openAiWire.ts"
import type { RequestInfo } from "./internal/openAiWire.ts"

/** How to reach the server and what to ask it for. */
export interface Options {
  /** The API root, without `/chat/completions`, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8000/v1`. */
  readonly baseUrl: string
  /** The model name the server knows, e.g. `gpt-4.1-mini` or `qwen3:8b`. */
  readonly model: string
  /** Sent as `Authorization: Bearer …`; local servers usually need none. */
  readonly apiKey?: Redacted.Redacted<string> | undefined
  /** Sampling temperature; the server's default when absent. */
  readonly temperature?: number
  /** Sent as `max_tokens`, which every compatible server understands. */
  readonly maxTokens?: number
  /** Extra request headers. `api-key` and `x-api-key` are redacted like `authorization`. */
  readonly headers?: Record<string, string>
  /**
   * How long a streamed answer may stay silent (no response headers, no
   * bytes) before it fails with a retryable `NetworkError`
   * (`TransportError`). Measured on the `Clock`. Default 60 seconds.
   */
  readonly streamIdleTimeout?: Duration.Input
}

/** The base URL `layerConfig` uses when none is configured. */
export const defaultBaseUrl = "https://api.openai.com/v1"

/** The default of `Options.streamIdleTimeout`. */
export const defaultStreamIdleTimeout: Duration.Duration = Duration.seconds(60)

const redactedHeaderNames = ["api-key", "x-api-key", "openai-organization", "openai-project"]

const withRedactedHeaders = Effect.updateService(
  Headers.CurrentRedactedNames,
  (names): ReadonlyArray<string | RegExp> => [...names, ...redactedHeaderNames]
)

const headersOf = (response: HttpClientResponse.HttpClientResponse): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(response.headers)) out[name] = String(value)
  return out
}

/** A connection-level `HttpClientError` as a `NetworkError`; nothing of the request but its method and URL. */
const fromHttpClientError = (method: string, request: RequestInfo, error: HttpClientError.HttpClientError) => {
  const reason = error.reason
  const cause: unknown = "cause" in reason ? reason.cause : undefined
  const detail = reason.description ??
    (cause instanceof Error ? cause.message : cause === undefined ? reason._tag : String(cause))
  const kind = reason._tag === "EncodeError" || reason._tag === "InvalidUrlError" ? reason._tag : "TransportError"
  return aiError(method, networkError(request, kind, detail))
}

/**
 * The OpenAI-compatible model as a `LanguageModel` service, over the
 * current `HttpClient`. `streamText` streams; `generateText` asks for one
 * JSON completion (`stream: false`), with no idle timeout.
 */
export const make = (options: Options): Effect.Effect<LanguageModel.LanguageModel, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const url = `${options.baseUrl.replace(/\/+$/, "")}/chat/completions`
    const request: RequestInfo = { method: "POST", url }
    const apiKey = options.apiKey
    const hasApiKey = apiKey !== undefined
    const scrub = makeScrubber(apiKey)
    const idle = Duration.fromInputUnsafe(options.streamIdleTimeout ?? defaultStreamIdleTimeout)
    const settings = { model: options.model, temperature: options.temperature, maxTokens: options.maxTokens }

    const idleError = (method: string) =>
      aiError(
        method,
        networkError(
          request,
          "TransportError",
          `the server sent nothing for ${Duration.format(idle)}; the stream stalled`
        )
      )

    /** Sends the body; a non-2xx answer fails with the reason its status and body say. */
    const send = (method: string, providerOptions: LanguageModel.ProviderOptions, stream: boolean) =>
      Effect.gen(function*() {
        const body = requestBody(settings, providerOptions, stream)
        if (Result.isFailure(body)) return yield* Effect.fail(aiError(method, body.failure))
        providerOptions.span.attribute("gen_ai.request.model", options.model)
        const outgoing = HttpClientRequest.post(url).pipe(
          HttpClientRequest.setHeaders(options.headers ?? {}),
          apiKey === undefined ? (self) => self : HttpClientRequest.bearerToken(apiKey),
          HttpClientRequest.accept(stream ? "text/event-stream" : "application/json"),
          HttpClientRequest.bodyJsonUnsafe(body.success)
        )
        const execute = client.execute(outgoing).pipe(
          Effect.mapError((error) => fromHttpClientError(method, request, error))
        )
        const response = yield* stream
          ? Effect.timeoutOrElse(execute, { duration: idle, orElse: () => Effect.fail(idleError(method)) })
          : execute
        if (response.status >= 200 && response.status < 300) return response
        const text = scrub(yield* response.text.pipe(Effect.orElseSucceed(() => "")))
        const nowMillis = yield* Clock.currentTimeMillis
        return yield* Effect.fail(aiError(
          method,
          reasonOfResponse({
            status: response.status,
            headers: headersOf(response),
            body: text,
            request,
            hasApiKey,
            nowMillis
          })
        ))
      }).pipe(withRedactedHeaders)

    /** Reads a JSON completion body into parts (also used when a server ignores `stream: true`). */
    const readCompletion = (method: string, response: HttpClientResponse.HttpClientResponse) =>
      Effect.gen(function*() {
        const text = scrub(
          yield* response.text.pipe(Effect.mapError((error) => fromHttpClientError(method, request, error)))
        )
        let json: unknown
        try {
          json = JSON.parse(text)
        } catch {
          return yield* Effect.fail(
            aiError(method, invalidResponse(`the completion is not JSON: ${text.slice(0, 200)}`))
          )
        }
        if (typeof json === "object" && json !== null && "error" in json && json.error != null) {
          return yield* Effect.fail(aiError(method, reasonOfInBandError(json, request, hasApiKey)))
        }
        const completion = Schema.decodeUnknownResult(WireCompletion)(json)
        if (Result.isFailure(completion)) {
          return yield* Effect.fail(
            aiError(method, invalidResponse(`unexpected completion: ${completion.failure.message}`))
          )
        }
        const parts = completionParts(completion.success)
        return Result.isFailure(parts) ? yield* Effect.fail(aiError(method, parts.failure)) : parts.success
      })

    const streamText = (providerOptions: LanguageModel.ProviderOptions) =>
      Stream.unwrap(Effect.gen(function*() {
        const response = yield* send("streamText", providerOptions, true)
        if (response.headers["content-type"]?.includes("application/json")) {
          return Stream.fromIterable(toStreamParts(yield* readCompletion("streamText", response)))
        }
        const decoder = makeStreamDecoder(request, hasApiKey, scrub)
        const check = (outcome: Result.Result<Array<Response.StreamPartEncoded>, AiError.AiErrorReason>) =>
          Result.isFailure(outcome)
            ? Effect.fail(aiError("streamText", outcome.failure))
            : Effect.succeed(outcome.success)
        // one watchdog per stream, not a timer per chunk: a chunk only notes the time it arrived
        const clock = yield* Clock.Clock
        const idleMillis = Duration.toMillis(idle)
        let lastChunkAt = clock.currentTimeMillisUnsafe()
        const watchdog: Effect.Effect<never, AiError.AiError> = Effect.suspend(() => {
          const quiet = clock.currentTimeMillisUnsafe() - lastChunkAt
          return quiet >= idleMillis
            ? Effect.fail(idleError("streamText"))
            : Effect.andThen(Effect.sleep(Duration.millis(idleMillis - quiet)), watchdog)
        })
        return response.stream.pipe(
          Stream.mapError((error) => fromHttpClientError("streamText", request, error)),
          Stream.tap(() => Effect.sync(() => void (lastChunkAt = clock.currentTimeMillisUnsafe()))),
          Stream.interruptWhen(watchdog),
          Stream.decodeText(),
          Stream.mapEffect((text) => check(decoder.feed(text))),
          Stream.takeUntil(() => decoder.isDone()),
          Stream.concat(Stream.fromEffect(Effect.suspend(() => check(decoder.end())))),
          Stream.flattenIterable
        )
      }))

    return yield* LanguageModel.make({
      generateText: (providerOptions) =>
        send("generateText", providerOptions, false).pipe(
          Effect.flatMap((response) => readCompletion("generateText", response))
        ),
      streamText
    })
  })

/** The parts of a whole completion, as stream parts. */
const toStreamParts = (parts: ReadonlyArray<Response.PartEncoded>): Array<Response.StreamPartEncoded> =>
  parts.flatMap((part, index): Array<Response.StreamPartEncoded> => {
    switch (part.type) {
      case "text":
        return [{ type: "text-start", id: `text-${index}` }, {
          type: "text-delta",
          id: `text-${index}`,
          delta: part.text
        }, {
          type: "text-end",
          id: `text-${index}`
        }]
      case "reasoning":
        return [
          { type: "reasoning-start", id: `reasoning-${index}` },
          { type: "reasoning-delta", id: `reasoning-${index}`, delta: part.text },
          { type: "reasoning-end", id: `reasoning-${index}` }
        ]
      case "tool-call":
      case "response-metadata":
      case "finish":
        return [part]
      default:
        return []
    }
  })

/** The OpenAI-compatible model as the `LanguageModel` of a layer. */
export const layer = (options: Options): Layer.Layer<LanguageModel.LanguageModel, never, HttpClient.HttpClient> =>
  Layer.effect(LanguageModel.LanguageModel, make(options))

/**
 * Reads `Options` from `Config`: `<prefix>_BASE_URL` (default
 * `https://api.openai.com/v1`), `<prefix>_MODEL` (required) and
 * `<prefix>_API_KEY` (optional, redacted; an empty value counts as none).
 * The prefix defaults to `OPENAI`.
 */
export const config = (prefix = "OPENAI"): Config.Config<Options> =>
  Config.all({
    baseUrl: Config.String(`${prefix}_BASE_URL`).pipe(Config.withDefault(defaultBaseUrl)),
    model: Config.String(`${prefix}_MODEL`),
    apiKey: Config.option(Config.Redacted(`${prefix}_API_KEY`))
  }).pipe(Config.map(({ apiKey, baseUrl, model }): Options => ({
    baseUrl,
    model,
    ...(Option.isSome(apiKey) && Redacted.value(apiKey.value).length > 0 ? { apiKey: apiKey.value } : {})
  })))

/**
 * Whether a provider is configured at all: `None` when neither
 * `<prefix>_MODEL` nor `<prefix>_BASE_URL` is set, so an app can fall back
 * to an offline model; otherwise the `config` (a base URL without a model
 * fails, naming the missing key).
 */
export const configOption = (prefix = "OPENAI"): Config.Config<Option.Option<Options>> =>
  Config.all({
    model: Config.option(Config.String(`${prefix}_MODEL`)),
    baseUrl: Config.option(Config.String(`${prefix}_BASE_URL`))
  }).pipe(Config.flatMap(({ baseUrl, model }) =>
    Option.isNone(model) && Option.isNone(baseUrl)
      ? Config.succeed(Option.none())
      : config(prefix).pipe(Config.map(Option.some))
  ))

/** The model configured by `config(prefix)`, as a layer. */
export const layerConfig = (
  prefix?: string
): Layer.Layer<LanguageModel.LanguageModel, Config.ConfigError, HttpClient.HttpClient> =>
  Layer.unwrap(Effect.map(config(prefix), layer))

/** The configured model if `configOption(prefix)` finds one, else `fallback` (e.g. an offline model). */
export const layerConfigOrElse = <E, R>(
  fallback: Layer.Layer<LanguageModel.LanguageModel, E, R>,
  prefix?: string
): Layer.Layer<LanguageModel.LanguageModel, Config.ConfigError | E, HttpClient.HttpClient | R> =>
  Layer.unwrap(Effect.map(
    configOption(prefix),
    (options): Layer.Layer<LanguageModel.LanguageModel, E, HttpClient.HttpClient | R> =>
      Option.isSome(options) ? layer(options.value) : fallback
  ))
