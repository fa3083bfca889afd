/**
 * Reconnect benchmark: the time `resumeSession` takes to bring back a session
 * from transcripts of 1,000, 10,000 and 100,000 messages, against the floor
 * (reading the same file and `JSON.parse` of each line), in the same run; and
 * the cost of persisting a turn as the transcript grows.
 *
 *   npm run bench:reconnect
 */
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { SessionBackend, Testing, TranscriptStore } from "../src/index.ts"

const sizes = [1_000, 10_000, 100_000]
const rounds = 5

/** A conversation of `size` messages: user, assistant with a tool call, tool result, assistant answer … */
const conversation = (size: number): Array<unknown> =>
  Array.from({ length: size }, (_, i) => {
    const id = `call_${Math.floor(i / 4)}`
    switch (i % 4) {
      case 0:
        return { role: "user", content: `question ${i}: what is in the file?` }
      case 1:
        return {
          role: "assistant",
          content: null,
          tool_calls: [{ id, tool: "read_file", arguments: { path: "a.txt" } }]
        }
      case 2:
        return { role: "tool", tool_call_id: id, name: "read_file", content: "x".repeat(200) }
      default:
        return { role: "assistant", content: `The file holds ${i} characters of text, mostly x.` }
    }
  })

const writeSession = (home: string, id: string, size: number) => {
  const dir = path.join(home, "projects", "-bench", "sessions", id)
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(
    path.join(dir, "transcript.jsonl"),
    conversation(size).map((m) => JSON.stringify(m)).join("\n") + "\n"
  )
  fs.writeFileSync(path.join(dir, "metadata.json"), JSON.stringify({ bundle: "scripted", working_dir: "/bench" }))
  return path.join(dir, "transcript.jsonl")
}

const floor = (file: string) => {
  const start = performance.now()
  const lines = fs.readFileSync(file, "utf8").split("\n")
  let parsed = 0
  for (const line of lines) if (line.length > 0) parsed += JSON.parse(line) === null ? 0 : 1
  return performance.now() - start + parsed * 0
}

const layerAt = (home: string) =>
  Testing.layer({ store: TranscriptStore.layerFileNode({ home }) }) satisfies Layer.Layer<SessionBackend.SessionBackend>

const reconnect = (home: string, id: string) =>
  Effect.gen(function*() {
    const sessions = yield* SessionBackend.SessionBackend
    const start = performance.now()
    yield* sessions.resumeSession(id)
    return performance.now() - start
  }).pipe(Effect.provide(layerAt(home)))

/** Mean time of a turn (echo engine, file store: two appends and a metadata write, each synced). */
const turnCost = (home: string, id: string, turns: number) =>
  Effect.gen(function*() {
    const sessions = yield* SessionBackend.SessionBackend
    yield* sessions.resumeSession(id)
    yield* sessions.sendMessage(id, "warm up")
    const start = performance.now()
    for (let i = 0; i < turns; i++) yield* sessions.sendMessage(id, `turn ${i}`)
    return (performance.now() - start) / turns
  }).pipe(Effect.provide(layerAt(home)))

const program = Effect.gen(function*() {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "esb-bench-"))
  console.log(`node ${process.version}, best of ${rounds}\n`)
  console.log("messages   floor (read + JSON.parse)   resumeSession   ratio   per-turn persistence")
  for (const size of sizes) {
    const id = `bench-${size}`
    const file = writeSession(home, id, size)
    let best = Infinity
    let bestFloor = Infinity
    for (let i = 0; i < rounds; i++) {
      bestFloor = Math.min(bestFloor, floor(file))
      best = Math.min(best, yield* reconnect(home, id))
    }
    const perTurn = yield* turnCost(home, id, 50)
    console.log(
      `${String(size).padStart(8)}   ${bestFloor.toFixed(1).padStart(20)} ms   ${best.toFixed(1).padStart(10)} ms   ${
        (best / bestFloor).toFixed(2).padStart(5)
      }×   ${perTurn.toFixed(2).padStart(8)} ms`
    )
  }
  fs.rmSync(home, { recursive: true, force: true })
})

Effect.runPromise(program)
