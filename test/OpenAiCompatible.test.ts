import { NodeHttpClient } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import {
  Cause,
  ConfigProvider,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Option,
  Redacted,
  Schema,
  Stream,
  Tracer
} from "effect"
import { AiError, LanguageModel, Prompt, Tool, Toolkit } from "effect/ai"
import { HttpClient } from "effect/http"
import { TestClock } from "effect/testing"
import * as LocalModel from "../src/LocalModel.ts"
import * as OpenAiCompatible from "../src/OpenAiCompatible.ts"
import * as FakeOpenAi from "./support/fakeOpenAi.ts"

/** Runs `effect` against a provider pointed at the fake (through a real Node HTTP client). */
const withModel = (baseUrl: string, extra?: Partial<OpenAiCompatible.Options>) =>
  Effect.provide(
    OpenAiCompatible.layer({ baseUrl, model: "fake-model", ...extra }).pipe(
      Layer.provide(NodeHttpClient.layerNodeHttp)
    )
  )

const collect = (prompt: Prompt.RawInput) => Stream.runCollect(LanguageModel.streamText({ prompt }))

const textOf = (parts: ReadonlyArray<{ readonly type: string; readonly delta?: string }>) =>
  parts.flatMap((part) => part.type === "text-delta" ? [part.delta ?? ""] : []).join("")

const bodyOf = (request: FakeOpenAi.ReceivedRequest | undefined) => request?.body as Record<string, unknown>

const GetWeather = Tool.make("get_weather", {
  description: "The current weather in a city",
  parameters: Schema.Struct({ city: Schema.String, unit: Schema.optional(Schema.Literals(["c", "f"])) }),
  success: Schema.Struct({ temperature: Schema.Number })
})
const Weather = Toolkit.make(GetWeather)
const WeatherHandlers = Weather.toLayer({ get_weather: () => Effect.succeed({ temperature: 21 }) })

const aiErrorOf = (error: unknown): AiError.AiError => {
  assert.isTrue(AiError.isAiError(error), `expected an AiError, got ${String(error)}`)
  return error as AiError.AiError
}

describe("OpenAiCompatible", () => {
  it.effect("streams text deltas in order, then usage and the finish reason", () =>
    Effect.gen(function*() {
      const fake = yield* FakeOpenAi.make
      yield* fake.enqueue(FakeOpenAi.text("Hello there, dear world!", { chunks: 4 }))
      const parts = yield* collect([
        { role: "system", content: "Be brief." },
        { role: "user", content: "Say hello" }
      ]).pipe(withModel(fake.url, { temperature: 0.2, maxTokens: 64 }))

      assert.deepStrictEqual(parts.map((part) => part.type), [
        "response-metadata",
        "text-start",
        "text-delta",
        "text-delta",
        "text-delta",
        "text-delta",
        "text-end",
        "finish"
      ])
      assert.deepStrictEqual(
        parts.flatMap((part) => part.type === "text-delta" ? [part.delta] : []),
        ["Hello ", "there,", " dear ", "world!"]
      )
      const metadata = parts[0]
      assert.isTrue(metadata.type === "response-metadata" && metadata.id === "chatcmpl-fake-1")
      assert.isTrue(metadata.type === "response-metadata" && metadata.modelId === "fake-model")
      const finish = parts.at(-1)
      assert.isTrue(finish?.type === "finish")
      if (finish?.type === "finish") {
        assert.strictEqual(finish.reason, "stop")
        assert.strictEqual(finish.usage.inputTokens.total, 10)
        assert.strictEqual(finish.usage.outputTokens.total, 4)
      }

      const [request] = yield* fake.requests
      assert.strictEqual(request.path, "/v1/chat/completions")
      assert.deepStrictEqual(request.body, {
        model: "fake-model",
        messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Say hello" }],
        temperature: 0.2,
        max_tokens: 64,
        stream: true,
        stream_options: { include_usage: true }
      })
      assert.isUndefined(request.headers.authorization)
    }))

  it.effect("turns reasoning_content deltas into reasoning parts before the text", () =>
    Effect.gen(function*() {
      const fake = yield* FakeOpenAi.make
      yield* fake.enqueue(FakeOpenAi.text("42", { reasoning: "six times seven", chunks: 2 }))
      const parts = yield* collect("What is 6*7?").pipe(withModel(fake.url))
      assert.deepStrictEqual(parts.map((part) => part.type).slice(1, -1), [
        "reasoning-start",
        "reasoning-delta",
        "reasoning-delta",
        "reasoning-end",
        "text-start",
        "text-delta",
        "text-delta",
        "text-end"
      ])
      assert.strictEqual(
        parts.flatMap((part) => part.type === "reasoning-delta" ? [part.delta] : []).join(""),
        "six times seven"
      )
      assert.strictEqual(textOf(parts), "42")
    }))

  it.effect("streams tool calls whose arguments arrive in pieces, and sends the tools' JSON schema", () =>
    Effect.gen(function*() {
      const fake = yield* FakeOpenAi.make
      yield* fake.enqueue(FakeOpenAi.toolCalls([
        { id: "call_a", name: "get_weather", arguments: { city: "Paris" } },
        { id: "call_b", name: "get_weather", arguments: { city: "Oslo", unit: "c" } }
      ], { chunks: 3, text: "Checking." }))
      const parts = yield* Stream.runCollect(
        LanguageModel.streamText({
          prompt: "Weather in Paris and Oslo?",
          toolkit: Weather,
          disableToolCallResolution: true
        })
      ).pipe(withModel(fake.url), Effect.provide(WeatherHandlers))

      const deltas = (id: string) =>
        parts.flatMap((part) => part.type === "tool-params-delta" && part.id === id ? [part.delta] : [])
      assert.strictEqual(deltas("call_a").length, 3)
      assert.strictEqual(deltas("call_a").join(""), "{\"city\":\"Paris\"}")
      assert.deepStrictEqual(
        parts.filter((part) => part.type !== "tool-params-delta" && part.type !== "text-delta").map((part) =>
          part.type === "tool-params-start" || part.type === "tool-params-end" ? `${part.type}:${part.id}` : part.type
        ),
        [
          "response-metadata",
          "text-start",
          "text-end",
          "tool-params-start:call_a",
          "tool-params-start:call_b",
          "tool-params-end:call_a",
          "tool-call",
          "tool-params-end:call_b",
          "tool-call",
          "finish"
        ]
      )
      const calls = parts.flatMap((part) => part.type === "tool-call" ? [part] : [])
      assert.deepStrictEqual(calls.map((call) => [call.id, call.name, call.params]), [
        ["call_a", "get_weather", { city: "Paris" }],
        ["call_b", "get_weather", { city: "Oslo", unit: "c" }]
      ])
      const finish = parts.at(-1)
      assert.isTrue(finish?.type === "finish" && finish.reason === "tool-calls")

      const body = bodyOf((yield* fake.requests)[0])
      assert.strictEqual(body.tool_choice, "auto")
      const tools = body.tools as ReadonlyArray<{ type: string; function: Record<string, unknown> }>
      assert.strictEqual(tools.length, 1)
      assert.strictEqual(tools[0].type, "function")
      assert.strictEqual(tools[0].function.name, "get_weather")
      assert.strictEqual(tools[0].function.description, "The current weather in a city")
      const schema = tools[0].function.parameters as {
        type: string
        properties: Record<string, { type?: string }>
        required: Array<string>
      }
      assert.strictEqual(schema.type, "object")
      assert.strictEqual(schema.properties.city.type, "string")
      assert.deepStrictEqual(schema.required, ["city"])
    }))

  it.effect("round-trips a tool call: the next request carries the call and its result in OpenAI's shape", () =>
    Effect.gen(function*() {
      const fake = yield* FakeOpenAi.make
      yield* fake.enqueue(
        FakeOpenAi.toolCalls([{ id: "call_1", name: "get_weather", arguments: { city: "Paris" } }]),
        FakeOpenAi.text("It is 21 degrees in Paris.")
      )
      const question = Prompt.make("What is the weather in Paris?")
      const first = yield* LanguageModel.generateText({ prompt: question, toolkit: Weather, toolChoice: "required" })
        .pipe(
          withModel(fake.url)
        )
      assert.strictEqual(first.finishReason, "tool-calls")
      assert.deepStrictEqual(first.toolCalls.map((call) => [call.id, call.name, call.params]), [
        ["call_1", "get_weather", { city: "Paris" }]
      ])
      assert.strictEqual(first.toolResults.length, 1)

      const second = yield* LanguageModel.generateText({
        prompt: Prompt.concat(question, Prompt.fromResponseParts(first.content)),
        toolkit: Weather
      }).pipe(withModel(fake.url))
      assert.strictEqual(second.text, "It is 21 degrees in Paris.")
      assert.strictEqual(second.finishReason, "stop")
      assert.strictEqual(second.usage.inputTokens.total, 10)

      const [one, two] = yield* fake.requests
      assert.strictEqual(bodyOf(one).stream, false)
      assert.strictEqual(bodyOf(one).tool_choice, "required")
      assert.deepStrictEqual(bodyOf(two).messages, [
        { role: "user", content: "What is the weather in Paris?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [{
            id: "call_1",
            type: "function",
            function: { name: "get_weather", arguments: "{\"city\":\"Paris\"}" }
          }]
        },
        { role: "tool", tool_call_id: "call_1", content: "{\"temperature\":21}" }
      ])
      assert.strictEqual(yield* fake.pending, 0)
    }).pipe(Effect.provide(WeatherHandlers)))

  it.effect("maps HTTP errors to AiError reasons that carry the provider's message", () =>
    Effect.gen(function*() {
      const fake = yield* FakeOpenAi.make
      const cases: ReadonlyArray<readonly [number, string, string]> = [
        [400, "InvalidRequestError", "messages must not be empty"],
        [401, "AuthenticationError", "Incorrect API key provided"],
        [403, "AuthenticationError", "project has no access"],
        [404, "InvalidRequestError", "The model `nope` does not exist"],
        [422, "InvalidRequestError", "temperature must be at most 2"],
        [500, "InternalProviderError", "upstream crashed"],
        [503, "InternalProviderError", "engine overloaded"]
      ]
      for (const [status, tag, message] of cases) {
        yield* fake.enqueue(FakeOpenAi.error(status, message))
        const error = aiErrorOf(yield* Effect.flip(collect("hi").pipe(withModel(fake.url))))
        assert.strictEqual(error.reason._tag, tag, `status ${status}`)
        assert.include(error.message, message, `status ${status}`)
      }
      yield* fake.enqueue(FakeOpenAi.error(403, "forbidden"))
      const forbidden = aiErrorOf(yield* Effect.flip(collect("hi").pipe(withModel(fake.url))))
      assert.isTrue(
        forbidden.reason._tag === "AuthenticationError" && forbidden.reason.kind === "InsufficientPermissions"
      )

      yield* fake.enqueue(
        FakeOpenAi.error(429, "slow down", { headers: { "retry-after": "7" }, type: "rate_limit_error" })
      )
      const limited = aiErrorOf(yield* Effect.flip(collect("hi").pipe(withModel(fake.url))))
      assert.strictEqual(limited.reason._tag, "RateLimitError")
      assert.isTrue(limited.isRetryable)
      assert.strictEqual(limited.retryAfter === undefined ? undefined : Duration.toMillis(limited.retryAfter), 7000)
      assert.isTrue(
        limited.reason._tag === "RateLimitError" && JSON.stringify(limited.reason.metadata).includes("slow down")
      )

      // generateText maps the same way
      yield* fake.enqueue(FakeOpenAi.error(500, "boom"))
      const generated = aiErrorOf(
        yield* Effect.flip(LanguageModel.generateText({ prompt: "hi" }).pipe(withModel(fake.url)))
      )
      assert.strictEqual(generated.reason._tag, "InternalProviderError")
      assert.include(generated.message, "boom")
    }))

  it.effect("fails with a NetworkError when the server cannot be reached", () =>
    Effect.gen(function*() {
      const closed = yield* Effect.scoped(Effect.map(FakeOpenAi.make, (fake) => fake.url))
      const error = aiErrorOf(
        yield* Effect.flip(collect("hi").pipe(withModel(closed)))
      )
      assert.strictEqual(error.reason._tag, "NetworkError")
      assert.isTrue(error.isRetryable)
    }))

  it.effect("reads SSE with CRLF, comments, events split across writes and several in one write", () =>
    Effect.gen(function*() {
      const fake = yield* FakeOpenAi.make
      const chunk = (content: string) =>
        JSON.stringify({ id: "c1", model: "m", choices: [{ index: 0, delta: { content }, finish_reason: null }] })
      const done = JSON.stringify({ id: "c1", choices: [{ index: 0, delta: {}, finish_reason: "length" }] })
      const stream =
        `: keep-alive\r\n\r\ndata: ${chunk("Hel")}\r\n\r\ndata: ${chunk("lo")}\n\ndata: ${chunk(" wor")}\r\n\r\n` +
        `: ping\n\ndata: ${chunk("ld")}\n\ndata: ${done}\r\n\r\ndata: [DONE]\r\n\r\n`
      // cut in awkward places: inside "data:", inside the JSON, between CR and LF
      const cuts = [3, 40, stream.indexOf("\r\n\r\ndata: {") + 1, stream.indexOf(" wor") + 2, stream.length - 9]
        .sort((a, b) => a - b)
      const pieces = [0, ...cuts].map((start, i) => stream.slice(start, cuts[i] ?? stream.length))
      assert.strictEqual(pieces.join(""), stream)
      yield* fake.enqueue(FakeOpenAi.raw(pieces))
      const parts = yield* collect("hi").pipe(withModel(fake.url))
      assert.strictEqual(textOf(parts), "Hello world")
      const finish = parts.at(-1)
      assert.isTrue(finish?.type === "finish" && finish.reason === "length")
    }))

  it.effect("accepts a server that ignores stream: true and answers with one JSON completion", () =>
    Effect.gen(function*() {
      const fake = yield* FakeOpenAi.make
      const completion = {
        id: "chatcmpl-json",
        model: "m",
        choices: [{ index: 0, message: { role: "assistant", content: "whole answer" }, finish_reason: "stop" }],
        usage: { prompt_tokens: 3, completion_tokens: 2 }
      }
      yield* fake.enqueue(FakeOpenAi.raw([JSON.stringify(completion)], { contentType: "application/json" }))
      const parts = yield* collect("hi").pipe(withModel(fake.url))
      assert.strictEqual(textOf(parts), "whole answer")
      const finish = parts.at(-1)
      assert.isTrue(finish?.type === "finish" && finish.reason === "stop" && finish.usage.outputTokens.total === 2)
    }))

  it.effect("fails with InvalidResponseError on malformed JSON in the stream", () =>
    Effect.gen(function*() {
      const fake = yield* FakeOpenAi.make
      yield* fake.enqueue(FakeOpenAi.raw(["data: {\"id\": \"x\", \"choices\": [\n\n"]))
      const error = aiErrorOf(yield* Effect.flip(collect("hi").pipe(withModel(fake.url))))
      assert.strictEqual(error.reason._tag, "InvalidResponseError")
    }))

  it.effect("fails with the matching reason when the stream carries an error object", () =>
    Effect.gen(function*() {
      const fake = yield* FakeOpenAi.make
      yield* fake.enqueue(FakeOpenAi.streamError("model overloaded, try later", { text: "Partial" }))
      const received: Array<string> = []
      const error = aiErrorOf(
        yield* Effect.flip(
          LanguageModel.streamText({ prompt: "hi" }).pipe(
            Stream.runForEach((part) => Effect.sync(() => void received.push(part.type))),
            withModel(fake.url)
          )
        )
      )
      assert.includeMembers(received, ["text-start", "text-delta"])
      assert.strictEqual(error.reason._tag, "InternalProviderError")
      assert.include(error.message, "model overloaded, try later")

      yield* fake.enqueue(FakeOpenAi.streamError("too many requests", { type: "rate_limit_exceeded" }))
      const limited = aiErrorOf(yield* Effect.flip(collect("hi").pipe(withModel(fake.url))))
      assert.strictEqual(limited.reason._tag, "RateLimitError")

      yield* fake.enqueue(FakeOpenAi.streamError("prompt is too long", { type: "BadRequestError", code: 400 }))
      const invalid = aiErrorOf(yield* Effect.flip(collect("hi").pipe(withModel(fake.url))))
      assert.strictEqual(invalid.reason._tag, "InvalidRequestError")
      assert.include(invalid.message, "prompt is too long")
    }))

  it.effect("fails a stalled stream after the idle timeout, on the Clock, and closes the connection", () =>
    Effect.gen(function*() {
      const fake = yield* FakeOpenAi.make
      yield* fake.enqueue(FakeOpenAi.stall({ afterChunks: 2 }))
      const started = yield* Deferred.make<void>()
      const fiber = yield* LanguageModel.streamText({ prompt: "hi" }).pipe(
        Stream.tap((part) => part.type === "text-delta" ? Deferred.succeed(started, undefined) : Effect.void),
        Stream.runCollect,
        withModel(fake.url),
        Effect.forkChild
      )
      yield* Deferred.await(started)
      yield* TestClock.withLive(Effect.sleep("100 millis"))
      yield* TestClock.adjust("59 seconds")
      yield* TestClock.withLive(Effect.sleep("20 millis"))
      assert.isUndefined(fiber.pollUnsafe(), "still waiting before the 60 s default")
      yield* TestClock.adjust("2 seconds")
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isFailure(exit))
      const error = aiErrorOf(Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined)
      assert.strictEqual(error.reason._tag, "NetworkError")
      assert.include(error.message, "stalled")
      yield* fake.awaitAborted(1)
      assert.strictEqual(yield* fake.aborted, 1)
    }))

  it.effect("interrupting the stream aborts the HTTP request", () =>
    Effect.gen(function*() {
      const fake = yield* FakeOpenAi.make
      yield* fake.enqueue(FakeOpenAi.stall({ afterChunks: 2 }))
      const started = yield* Deferred.make<void>()
      const fiber = yield* LanguageModel.streamText({ prompt: "hi" }).pipe(
        Stream.tap((part) => part.type === "text-delta" ? Deferred.succeed(started, undefined) : Effect.void),
        Stream.runDrain,
        withModel(fake.url, { streamIdleTimeout: "1 hour" }),
        Effect.forkChild
      )
      yield* Deferred.await(started)
      assert.strictEqual(yield* fake.aborted, 0)
      yield* Fiber.interrupt(fiber)
      yield* fake.awaitAborted(1)
      assert.strictEqual(yield* fake.aborted, 1)
    }))

  it.effect("sends the API key as a bearer header only, and keeps it out of errors", () =>
    Effect.gen(function*() {
      const secret = "sk-test-5ecret-key-0123456789"
      const fake = yield* FakeOpenAi.make
      yield* fake.enqueue(
        FakeOpenAi.text("ok"),
        // a careless server echoes the key it rejected
        FakeOpenAi.error(401, `Incorrect API key provided: ${secret}`)
      )
      const spans: Array<Tracer.NativeSpan> = []
      const tracer = Tracer.make({
        span: (options) => {
          const span = new Tracer.NativeSpan(options)
          spans.push(span)
          return span
        }
      })
      const model = (effect: Effect.Effect<unknown, unknown, LanguageModel.LanguageModel>) =>
        effect.pipe(
          withModel(fake.url, { apiKey: Redacted.make(secret) }),
          Effect.withTracer(tracer),
          // record request headers on the client span, as a tracing setup may do
          Effect.provideService(HttpClient.TracerHeaderFilter, () => true)
        )
      yield* model(collect("hi"))
      const error = aiErrorOf(yield* Effect.flip(model(collect("hi"))))
      assert.isTrue(error.reason._tag === "AuthenticationError" && error.reason.kind === "InvalidKey")
      assert.include(error.message, "Incorrect API key provided: <redacted>")

      const closed = yield* Effect.scoped(Effect.map(FakeOpenAi.make, (other) => other.url))
      const network = yield* Effect.flip(
        collect("hi").pipe(withModel(closed, { apiKey: Redacted.make(secret) }))
      )
      for (const failure of [error, network]) {
        for (
          const text of [String(failure), failure.message, JSON.stringify(failure), Cause.pretty(Cause.fail(failure))]
        ) {
          assert.notInclude(text, secret)
          assert.notInclude(text, "5ecret")
        }
      }

      const names = spans.map((span) => span.name)
      assert.includeMembers(names, ["LanguageModel.streamText", "POST"])
      const post = spans.find((span) => span.name === "POST")
      assert.strictEqual(post?.attributes.get("http.request.header.authorization"), "<redacted>")
      for (const span of spans) {
        const recorded = JSON.stringify([...span.attributes].map(([key, value]) => [key, String(value)])) +
          JSON.stringify(span.events.map(([name, , attributes]) => [name, String(JSON.stringify(attributes))]))
        assert.notInclude(recorded, secret, `span ${span.name}`)
      }

      const [first] = yield* fake.requests
      assert.strictEqual(first.headers.authorization, `Bearer ${secret}`)
      assert.notInclude(JSON.stringify(first.body), secret)
    }))

  it.effect("layerConfig reads the base URL, model and key from the ConfigProvider", () =>
    Effect.gen(function*() {
      const fake = yield* FakeOpenAi.make
      yield* fake.enqueue(FakeOpenAi.text("configured"))
      const env = { OPENAI_BASE_URL: fake.url, OPENAI_MODEL: "env-model", OPENAI_API_KEY: "sk-from-env" }
      const parts = yield* collect("hi").pipe(
        Effect.provide(OpenAiCompatible.layerConfig().pipe(Layer.provide(NodeHttpClient.layerNodeHttp))),
        Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env })))
      )
      assert.strictEqual(textOf(parts), "configured")
      const [request] = yield* fake.requests
      assert.strictEqual(bodyOf(request).model, "env-model")
      assert.strictEqual(request.headers.authorization, "Bearer sk-from-env")

      const read = (env: Record<string, string>) =>
        OpenAiCompatible.configOption().parse(ConfigProvider.fromEnv({ env }))
      assert.isTrue(Option.isNone(yield* read({})))
      const modelOnly = yield* read({ OPENAI_MODEL: "gpt-test" })
      assert.isTrue(Option.isSome(modelOnly))
      if (Option.isSome(modelOnly)) {
        assert.strictEqual(modelOnly.value.baseUrl, "https://api.openai.com/v1")
        assert.isUndefined(modelOnly.value.apiKey)
      }
      const missingModel = yield* Effect.flip(read({ OPENAI_BASE_URL: "http://127.0.0.1:8000/v1" }))
      assert.include(String(missingModel), "OPENAI_MODEL")
      const prefixed = yield* OpenAiCompatible.config("LOCAL").parse(
        ConfigProvider.fromEnv({ env: { LOCAL_MODEL: "qwen", LOCAL_BASE_URL: "http://127.0.0.1:11434/v1" } })
      )
      assert.deepStrictEqual(prefixed, { baseUrl: "http://127.0.0.1:11434/v1", model: "qwen" })

      // nothing configured: the fallback answers and the server is not asked
      const offline = yield* collect("hi").pipe(
        Effect.provide(
          OpenAiCompatible.layerConfigOrElse(LocalModel.layer).pipe(Layer.provide(NodeHttpClient.layerNodeHttp))
        ),
        Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env: {} })))
      )
      assert.include(textOf(offline), "offline model")
      assert.strictEqual((yield* fake.requests).length, 1)
    }))
})
