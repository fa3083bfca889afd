import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, Layer } from "effect"
import type { Scope } from "effect"
import { TranscriptStore } from "effect-session-backend"
import type { Transcript } from "effect-session-backend"
import { TestClock } from "effect/testing"
import * as path from "node:path"

const messages: ReadonlyArray<Transcript.Message> = [
  { role: "user", content: "hi" },
  { role: "assistant", content: "hello", thinking_block: { text: "kept" } }
]

const suite = (
  name: string,
  makeStore: Effect.Effect<Layer.Layer<TranscriptStore.TranscriptStore>, never, Scope.Scope>
) =>
  describe(name, () => {
    const withStore = <A, E>(f: (store: TranscriptStore.Service) => Effect.Effect<A, E>) =>
      Effect.gen(function*() {
        const layer = yield* makeStore
        return yield* Effect.gen(function*() {
          return yield* f(yield* TranscriptStore.TranscriptStore)
        }).pipe(Effect.provide(layer))
      })

    it.effect("round trip, append, find across projects", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const location = yield* store.locate("s1", "/srv/app")
          assert.strictEqual(location.projectId, "-srv-app")
          yield* store.save(location, messages.slice(0, 1))
          yield* store.append(location, messages.slice(1))
          const found = yield* store.find("s1")
          assert.strictEqual(found.transcriptPath, location.transcriptPath)
          const loaded = yield* store.load(found)
          assert.deepStrictEqual(loaded.messages, messages)
          assert.isFalse(loaded.tornLastLine)
          assert.strictEqual((yield* store.find("s2").pipe(Effect.flip))._tag, "TranscriptNotFound")
        })
      ))

    it.effect("list finds every stored session across projects, most recently updated first", () =>
      withStore((store) =>
        Effect.gen(function*() {
          assert.deepStrictEqual(yield* store.list, [])
          const older = yield* store.locate("older", "/srv/a")
          const newer = yield* store.locate("newer", "/srv/b")
          yield* store.save(older, messages)
          yield* store.saveMetadata(older, { working_dir: "/srv/a", last_updated: "x" })
          yield* store.save(newer, messages)
          yield* TestClock.adjust("1 hour")
          yield* store.saveMetadata(newer, { working_dir: "/srv/b" })
          yield* store.saveMetadata(older, { description: "kept" })
          const listed = yield* store.list
          assert.deepStrictEqual(listed.map((s) => s.location.sessionId), ["older", "newer"])
          assert.strictEqual(listed[0].metadata.description, "kept")
          assert.strictEqual(listed[1].metadata.working_dir, "/srv/b")
        })
      ))

    it.effect("metadata is merged, never clobbered", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const location = yield* store.locate("s1", "/srv/app")
          yield* store.save(location, [])
          yield* store.saveMetadata(location, { session_id: "s1", bundle: "b", custom: { a: 1 } })
          yield* store.saveMetadata(location, { turn_count: 3 })
          const { metadata } = yield* store.load(location)
          assert.strictEqual(metadata.bundle, "b")
          assert.deepStrictEqual(metadata.custom, { a: 1 })
          assert.strictEqual(metadata.turn_count, 3)
          assert.isString(metadata.last_updated)
        })
      ))

    it.effect("a crafted id never becomes a path", () =>
      withStore((store) =>
        Effect.gen(function*() {
          for (const id of ["../../etc", "a/b", "..", "."]) {
            assert.strictEqual((yield* store.locate(id, "/srv").pipe(Effect.flip))._tag, "InvalidSessionId")
            assert.strictEqual((yield* store.find(id).pipe(Effect.flip))._tag, "InvalidSessionId")
          }
        })
      ))
  })

const tempHome = FileSystem.FileSystem.pipe(
  Effect.flatMap((fs) => fs.makeTempDirectoryScoped({ prefix: "esb-store-" })),
  Effect.provide(NodeFileSystem.layer),
  Effect.orDie
)

suite("TranscriptStore.layerMemory", Effect.sync(() => TranscriptStore.layerMemory()))
suite("TranscriptStore.layerFileNode", Effect.map(tempHome, (home) => TranscriptStore.layerFileNode({ home })))

describe("TranscriptStore.layerFile", () => {
  it.effect("passes the same behaviour on disk, writes atomically and leaves no temp files", () =>
    Effect.gen(function*() {
      const home = yield* tempHome
      const fs = yield* FileSystem.FileSystem
      yield* Effect.gen(function*() {
        const store = yield* TranscriptStore.TranscriptStore
        const location = yield* store.locate("s1", "/srv/app")
        yield* store.save(location, messages)
        yield* store.saveMetadata(location, { bundle: "b" })
        yield* store.save(location, messages.slice(0, 1))
        // a temp file left by a crash in the middle of a save does not confuse anything
        yield* fs.writeFileString(path.join(location.directory, "transcript.jsonl.dead.tmp"), "garbage")
        const loaded = yield* store.load(yield* store.find("s1"))
        assert.deepStrictEqual(loaded.messages, messages.slice(0, 1))
        const names = (yield* fs.readDirectory(location.directory)).sort()
        assert.deepStrictEqual(names, ["metadata.json", "transcript.jsonl", "transcript.jsonl.dead.tmp"])
        assert.strictEqual(location.directory, path.join(home, "projects", "-srv-app", "sessions", "s1"))
      }).pipe(Effect.provide(TranscriptStore.layerFileNode({ home })))
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})
