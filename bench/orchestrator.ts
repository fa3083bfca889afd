/**
 * Orchestrator overhead: a turn through the backend and the agent loop against
 * the fake OpenAI-compatible server on loopback (in a process of its own,
 * `bench/fakeServer.ts`), against the same HTTP exchange made directly (the
 * request body the provider sends, the whole streamed answer read), and the
 * provider alone, in the same run, in alternating rounds.
 *
 *   npm run bench:orchestrator
 */
import { NodeHttpClient, NodeServices } from "@effect/platform-node"
import { ConfigProvider, Effect, Layer, Stream } from "effect"
import { LanguageModel } from "effect/ai"
import { HttpClient, HttpClientRequest } from "effect/http"
import * as childProcess from "node:child_process"
import * as path from "node:path"
import * as AgentEngine from "../src/AgentEngine.ts"
import * as Hooks from "../src/Hooks.ts"
import { BundleLoader, CwdGuard, SessionBackend, TranscriptStore } from "../src/index.ts"
import * as OpenAiCompatible from "../src/OpenAiCompatible.ts"

const rounds = 7
const turnsPerRound = 60
const answer = "The quick brown fox jumps over the lazy dog. ".repeat(8)

const median = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]

/** The fake server's process, for the life of the scope; answers its base URL. */
const fakeServer = Effect.acquireRelease(
  Effect.callback<{ readonly url: string; readonly child: childProcess.ChildProcess }, Error>((resume) => {
    const child = childProcess.spawn(process.execPath, [path.join(import.meta.dirname, "fakeServer.js")], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString()
      const url = /listening on (\S+)/.exec(output)?.[1]
      if (url !== undefined) resume(Effect.succeed({ url, child }))
    })
    child.on("exit", (code) => resume(Effect.fail(new Error(`the fake server exited with ${code}`))))
  }),
  ({ child }) => Effect.sync(() => child.kill())
)

const program = Effect.gen(function*() {
  const fake = yield* fakeServer
  const http = yield* HttpClient.HttpClient
  const engine = yield* AgentEngine.AgentEngine
  const prepared = yield* engine.prepare({
    name: "bench",
    version: "1.0.0",
    instruction: "You are a benchmark.",
    providers: [{ module: "provider-openai-compatible", config: { base_url: fake.url, model: "fake" } }],
    tools: [],
    hooks: [],
    agents: {}
  })
  const backend = SessionBackend.layer.pipe(
    Layer.provide([BundleLoader.layerBundles([prepared]), TranscriptStore.layerMemory(), CwdGuard.layer])
  )
  return yield* Effect.gen(function*() {
    const sessions = yield* SessionBackend.SessionBackend

    /** `count` turns, each in a fresh session so every prompt is the same size; returns ms per turn. */
    const viaOrchestrator = (count: number) =>
      Effect.gen(function*() {
        const ids: Array<string> = []
        for (let i = 0; i < count; i++) ids.push((yield* sessions.createSession({ workingDir: "/tmp" })).sessionId)
        const start = performance.now()
        for (const id of ids) yield* sessions.sendMessage(id, "Tell me about the fox.")
        const elapsed = (performance.now() - start) / count
        for (const id of ids) yield* sessions.endSession(id)
        return elapsed
      })

    /** The body the provider sends for a turn of a fresh session (system instruction, prompt, stream options). */
    const body = {
      model: "fake",
      messages: [
        { role: "system", content: "You are a benchmark." },
        { role: "user", content: "Tell me about the fox." }
      ],
      stream: true,
      stream_options: { include_usage: true }
    }

    /** The same requests the orchestrator sends, made directly; returns ms per exchange. */
    const direct = (bodies: ReadonlyArray<unknown>, parse = false) =>
      Effect.gen(function*() {
        const start = performance.now()
        for (const body of bodies) {
          const response = yield* http.execute(
            HttpClientRequest.post(`${fake.url}/chat/completions`).pipe(HttpClientRequest.bodyJsonUnsafe(body))
          )
          if (!parse) {
            yield* Stream.runDrain(response.stream)
            continue
          }
          // what any client must do at least: split the events and parse each one's JSON
          const text = yield* response.text
          for (const line of text.split("\n")) {
            if (line.startsWith("data: ") && line !== "data: [DONE]") JSON.parse(line.slice(6))
          }
        }
        return (performance.now() - start) / bodies.length
      })

    /** The same requests through the provider alone (`LanguageModel.streamText`, no loop, no session). */
    const model = yield* OpenAiCompatible.make({ baseUrl: fake.url, model: "fake" })
    const viaProvider = (count: number) =>
      Effect.gen(function*() {
        const start = performance.now()
        for (let i = 0; i < count; i++) {
          yield* LanguageModel.streamText({
            prompt: [{ role: "system", content: "You are a benchmark." }, {
              role: "user",
              content: [{ type: "text", text: "Tell me about the fox." }]
            }]
          }).pipe(Stream.runDrain, Effect.provideService(LanguageModel.LanguageModel, model))
        }
        return (performance.now() - start) / count
      })

    // warm up every path
    yield* viaProvider(30)
    yield* viaOrchestrator(30)
    yield* direct(Array.from({ length: 30 }, () => body))

    const loop: Array<number> = []
    const bare: Array<number> = []
    const parsed: Array<number> = []
    const provider: Array<number> = []
    for (let round = 0; round < rounds; round++) {
      provider.push(yield* viaProvider(turnsPerRound))
      loop.push(yield* viaOrchestrator(turnsPerRound))
      const bodies = Array.from({ length: turnsPerRound }, () => body)
      bare.push(yield* direct(bodies))
      parsed.push(yield* direct(bodies, true))
    }
    const l = median(loop)
    const b = median(bare)
    console.log(`turns per round: ${turnsPerRound}, rounds: ${rounds}, answer: ${answer.length} chars in 20 chunks`)
    console.log(
      `direct HTTP exchange:      ${b.toFixed(3)} ms (median of rounds: ${bare.map((x) => x.toFixed(2)).join(" ")})`
    )
    console.log(
      `direct, events parsed:     ${median(parsed).toFixed(3)} ms (median of rounds: ${
        parsed.map((x) => x.toFixed(2)).join(" ")
      })`
    )
    console.log(
      `provider alone (effect/ai): ${median(provider).toFixed(3)} ms (median of rounds: ${
        provider.map((x) => x.toFixed(2)).join(" ")
      })`
    )
    console.log(
      `turn through orchestrator: ${l.toFixed(3)} ms (median of rounds: ${loop.map((x) => x.toFixed(2)).join(" ")})`
    )
    const p = median(provider)
    console.log(`turn / direct exchange: ${(l / b).toFixed(2)}x (target: within 1.2x)`)
    console.log(`turn / direct with events parsed: ${(l / median(parsed)).toFixed(2)}x`)
    console.log(`turn / provider alone (the loop, events, history): ${(l / p).toFixed(2)}x`)
  }).pipe(Effect.provide(backend))
})

const services = Layer.mergeAll(
  NodeHttpClient.layerNodeHttp,
  NodeServices.layer,
  Hooks.layer,
  ConfigProvider.layer(ConfigProvider.fromEnvRecord({}))
)

Effect.runPromise(
  program.pipe(
    Effect.scoped,
    Effect.provide(AgentEngine.layer().pipe(Layer.provideMerge(services)))
  )
).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
