import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import { SessionBackend, Testing, Transcript, TranscriptStore } from "effect-session-backend"
import * as childProcess from "node:child_process"
import * as path from "node:path"
import { tsxLoader } from "./support/tsx.ts"

const fixture = path.join(import.meta.dirname, "fixtures", "crashChild.ts")

/** Runs the fixture until it has acknowledged `acks` replies, then kills it with SIGKILL; returns what it printed. */
const runAndKill = (home: string, acks: number) =>
  Effect.callback<ReadonlyArray<string>, Error>((resume) => {
    const child = childProcess.spawn(process.execPath, ["--import", tsxLoader, fixture, home], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    let output = ""
    let killed = false
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString()
      if (!killed && output.split("\n").filter((line) => line.startsWith("acked ")).length >= acks) {
        killed = true
        child.kill("SIGKILL")
      }
    })
    child.on("error", (error) => resume(Effect.fail(error)))
    child.on("close", () => resume(Effect.succeed(output.split("\n").filter((line) => line.length > 0))))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

describe("a killed process", () => {
  it.live("loses no acknowledged message and no completed turn; the session continues", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const home = yield* fs.makeTempDirectoryScoped({ prefix: "esb-crash-" })
      const lines = yield* runAndKill(home, 25)
      const sessionId = lines[0].replace("session ", "")
      const acknowledged = lines.filter((line) => line.startsWith("acked ")).map((line) => line.slice(6))
      assert.isAtLeast(acknowledged.length, 25)

      yield* Effect.gen(function*() {
        const sessions = yield* SessionBackend.SessionBackend
        const store = yield* TranscriptStore.TranscriptStore
        assert.strictEqual(yield* sessions.sendMessage(sessionId, "after the crash"), "after the crash")
        const { messages } = yield* store.load(yield* store.find(sessionId))
        const answers = messages.filter((m) => m.role === "assistant" && typeof m.content === "string")
          .map((m) => m.content)
        for (const reply of acknowledged) assert.include(answers, reply, "an acknowledged reply is in the transcript")
        assert.deepStrictEqual(Transcript.findOrphanedToolCalls(messages), [], "the transcript is valid")
        assert.strictEqual(messages.at(-1)?.content, "after the crash")
      }).pipe(
        Effect.provide(Testing.layer({ store: TranscriptStore.layerFileNode({ home }) })),
        Effect.provide(TranscriptStore.layerFileNode({ home }))
      )
    }).pipe(Effect.provide(NodeFileSystem.layer)), 60_000)
})
