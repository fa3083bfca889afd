import { NodeHttpClient, NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, FileSystem, Layer, Stream } from "effect"
import { BundleLoader, CwdGuard, SessionBackend, TranscriptStore } from "effect-session-backend"
import type { SessionEvent } from "effect-session-backend"
import * as fs from "node:fs"
import * as path from "node:path"
import * as AgentEngine from "../src/AgentEngine.ts"
import * as Hooks from "../src/Hooks.ts"

const fixtures = path.join(import.meta.dirname, "fixtures", "bundles")

const engine = AgentEngine.layer().pipe(
  Layer.provideMerge(Layer.mergeAll(
    NodeHttpClient.layerNodeHttp,
    NodeServices.layer,
    Hooks.layer,
    ConfigProvider.layer(ConfigProvider.fromEnvRecord({}))
  ))
)

const loaderLayer = (options: BundleLoader.FileOptions) => BundleLoader.layerFile(options).pipe(Layer.provide(engine))

const bundleText = (version: string) => `---\nbundle:\n  name: live\n  version: ${version}\n---\nVersion ${version}.\n`

describe("BundleLoader.layerFile", () => {
  it.effect("serves the embedded default bundle, and bundles by name or path, each prepared once", () =>
    Effect.gen(function*() {
      const loader = yield* BundleLoader.BundleLoader
      const fallback = yield* loader.load()
      assert.strictEqual(fallback.name, "default")
      const coder = yield* loader.load("coder")
      assert.strictEqual(coder.name, "coder")
      assert.strictEqual(coder.version, "1.2.0")
      assert.strictEqual(yield* loader.load("coder"), coder, "cached")
      const byPath = yield* loader.load(path.join(fixtures, "plain.yaml"))
      assert.strictEqual(byPath.name, "plain")
      assert.strictEqual(yield* loader.load("plain"), byPath, "known by name once loaded")
      const error = yield* Effect.flip(loader.load("/nowhere/bundle.md"))
      assert.strictEqual(error._tag, "BundleLoadError")
    }).pipe(Effect.provide(loaderLayer({ bundles: { coder: path.join(fixtures, "coder") } }))))

  it.effect("a bad default bundle fails the layer when it starts, naming the file and the field", () =>
    Effect.gen(function*() {
      const dir = yield* FileSystem.FileSystem.pipe(
        Effect.flatMap((files) => files.makeTempDirectoryScoped()),
        Effect.provide(NodeServices.layer)
      )
      fs.writeFileSync(path.join(dir, "bundle.md"), "---\nbundle:\n  name: 7\n---\n")
      const error = yield* Effect.flip(Layer.build(loaderLayer({ path: dir })))
      assert.strictEqual(error._tag, "BundleLoadError")
      assert.strictEqual(error.path, path.join(dir, "bundle.md"))
      assert.strictEqual(error.field, "bundle.name")
    }))

  it.effect("reload tells the live sessions of a changed bundle, and new sessions get the new version", () =>
    Effect.gen(function*() {
      const dir = yield* FileSystem.FileSystem.pipe(
        Effect.flatMap((files) => files.makeTempDirectoryScoped()),
        Effect.provide(NodeServices.layer)
      )
      fs.writeFileSync(path.join(dir, "bundle.md"), bundleText("1.0.0"))
      yield* Effect.gen(function*() {
        const loader = yield* BundleLoader.BundleLoader
        const sessions = yield* SessionBackend.SessionBackend
        const old = yield* sessions.createSession({ workingDir: dir })
        assert.strictEqual(old.bundleVersion, "1.0.0")
        const unchanged = yield* loader.reload!()
        assert.strictEqual(unchanged.version, "1.0.0")
        fs.writeFileSync(path.join(dir, "bundle.md"), bundleText("1.1.0"))
        const reloaded = yield* loader.reload!()
        assert.strictEqual(reloaded.version, "1.1.0")
        const events = yield* sessions.events(old.sessionId, { after: 0 }).pipe(
          Stream.filter((e): e is SessionEvent.BundleReloaded => e._tag === "bundle:reloaded"),
          Stream.take(1),
          Stream.runCollect
        )
        assert.deepStrictEqual(Array.from(events).map((e) => [e.bundle, e.version]), [["live", "1.1.0"]])
        assert.strictEqual((yield* sessions.getSessionInfo(old.sessionId)).pipe((o) => o._tag), "Some")
        const fresh = yield* sessions.createSession({ workingDir: dir })
        assert.strictEqual(fresh.bundleVersion, "1.1.0")
        // the old session still answers (its running configuration is not disturbed)
        assert.include(yield* sessions.sendMessage(old.sessionId, "hello"), "You said: hello")
      }).pipe(
        Effect.provide(
          SessionBackend.layer.pipe(
            Layer.provideMerge(loaderLayer({ path: dir })),
            Layer.provide([TranscriptStore.layerMemory(), CwdGuard.layer])
          )
        )
      )
    }))
})
