import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as BundleConfig from "../src/BundleConfig.ts"

const fixtures = path.join(import.meta.dirname, "fixtures", "bundles")

const load = (target: string) => BundleConfig.load(target).pipe(Effect.provide(NodeServices.layer))
const loadError = (target: string) => Effect.flip(load(target))

/** Writes `files` into a fresh temp folder and returns its path. */
const folder = (files: Record<string, string>) =>
  Effect.gen(function*() {
    const files_ = yield* FileSystem.FileSystem
    const dir = yield* files_.makeTempDirectoryScoped({ prefix: "esb-bundle-" })
    for (const [name, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true })
      fs.writeFileSync(path.join(dir, name), text)
    }
    return dir
  }).pipe(Effect.provide(NodeServices.layer))

describe("BundleConfig", () => {
  it.effect("a bundle.md gives its frontmatter and its body as the instruction", () =>
    Effect.gen(function*() {
      const base = yield* load(path.join(fixtures, "base"))
      assert.strictEqual(base.name, "base")
      assert.strictEqual(base.version, "0.1.0")
      assert.strictEqual(base.instruction, "You are the base assistant.")
      assert.deepStrictEqual(base.providers, [{
        module: "provider-openai",
        config: { model: "base-model", temperature: 0.2 }
      }])
      assert.strictEqual(base.path, path.join(fixtures, "base", "bundle.md"))
    }))

  it.effect("includes are composed in order and the later bundle wins, key by key", () =>
    Effect.gen(function*() {
      const coder = yield* load(path.join(fixtures, "coder", "bundle.md"))
      assert.strictEqual(coder.name, "coder")
      assert.strictEqual(coder.version, "1.2.0")
      assert.strictEqual(coder.instruction, "You are a careful coding assistant.")
      assert.deepStrictEqual(coder.session, {
        orchestrator: { config: { max_iterations: 30, extended_thinking: false } }
      }, "session is deep-merged")
      assert.deepStrictEqual(coder.providers, [{
        module: "provider-openai",
        config: { model: "coder-model", temperature: 0.2 }
      }], "a module's config is merged over the included one")
      assert.deepStrictEqual(coder.tools.map((t) => t.module), ["tool-filesystem", "tool-bash"])
      assert.deepStrictEqual(Object.keys(coder.agents).sort(), ["explorer", "reviewer"])
      assert.deepStrictEqual(coder.files, [
        path.join(fixtures, "base", "bundle.md"),
        path.join(fixtures, "coder", "bundle.md")
      ])
    }))

  it.effect("a bundle.yaml composes too, with its instruction key", () =>
    Effect.gen(function*() {
      const plain = yield* load(path.join(fixtures, "plain.yaml"))
      assert.strictEqual(plain.name, "plain")
      assert.strictEqual(plain.version, "0.0.0")
      assert.strictEqual(plain.instruction, "From YAML.")
      assert.deepStrictEqual(plain.tools[0], {
        module: "tool-filesystem",
        config: { allowed_write_paths: ["src"] }
      }, "arrays are replaced, not merged")
    }))

  it.effect("a cycle is an error that names it", () =>
    Effect.gen(function*() {
      const dir = yield* folder({
        "a/bundle.md": "---\nbundle:\n  name: a\nincludes:\n  - ../b\n---\n",
        "b/bundle.md": "---\nbundle:\n  name: b\nincludes:\n  - ../a\n---\n"
      })
      const error = yield* loadError(path.join(dir, "a"))
      assert.include(error.detail, "cycle")
      assert.include(error.detail, `${path.join(dir, "a", "bundle.md")} -> ${path.join(dir, "b", "bundle.md")} ->`)
    }))

  it.effect("a missing include and a remote source fail at once, naming them", () =>
    Effect.gen(function*() {
      const dir = yield* folder({
        "missing/bundle.md": "---\nbundle:\n  name: m\nincludes:\n  - ../nowhere\n---\n",
        "remote/bundle.md":
          "---\nbundle:\n  name: r\nincludes:\n  - bundle: git+https://github.com/microsoft/amplifier-foundation@main\n---\n",
        "namespaced/bundle.md": "---\nbundle:\n  name: n\nincludes:\n  - foundation:behaviors/streaming-ui\n---\n"
      })
      const missing = yield* loadError(path.join(dir, "missing"))
      assert.strictEqual(missing.path, path.join(dir, "nowhere"))
      assert.include(missing.detail, "included by")
      const remote = yield* loadError(path.join(dir, "remote"))
      assert.strictEqual(remote.field, "includes[0]")
      assert.include(remote.detail, "cannot be fetched here")
      assert.strictEqual((yield* loadError(path.join(dir, "namespaced"))).field, "includes[0]")
    }))

  it.effect("a wrong field is named with the file; bad YAML gives its line", () =>
    Effect.gen(function*() {
      const dir = yield* folder({
        "typed/bundle.md": "---\nbundle:\n  name: t\nproviders:\n  - module: 42\n---\n",
        "nameless/bundle.yaml": "bundle:\n  version: 1.0.0\n",
        "broken/bundle.md": "---\nbundle:\n  name: b\ntools: [\n---\n",
        "open/bundle.md": "---\nbundle:\n  name: o\n",
        "nofront/bundle.md": "# Just markdown\n"
      })
      const typed = yield* loadError(path.join(dir, "typed"))
      assert.strictEqual(typed.field, "providers[0].module")
      assert.strictEqual(typed.path, path.join(dir, "typed", "bundle.md"))
      assert.strictEqual(typed.bundle, "t")
      assert.include(typed.message, "providers[0].module")
      assert.strictEqual((yield* loadError(path.join(dir, "nameless"))).field, "bundle.name")
      assert.match((yield* loadError(path.join(dir, "broken"))).detail, /invalid YAML at line \d/)
      assert.include((yield* loadError(path.join(dir, "open"))).detail, "no closing '---'")
      assert.include((yield* loadError(path.join(dir, "nofront"))).detail, "frontmatter")
      assert.include((yield* loadError(path.join(dir, "nowhere"))).detail, "no such bundle")
    }))

  it.effect("the fingerprint changes with the content and only with it", () =>
    Effect.gen(function*() {
      const dir = yield* folder({ "bundle.md": "---\nbundle:\n  name: f\n---\nOne.\n" })
      const first = BundleConfig.fingerprint(yield* load(dir))
      assert.strictEqual(BundleConfig.fingerprint(yield* load(dir)), first)
      fs.writeFileSync(path.join(dir, "bundle.md"), "---\nbundle:\n  name: f\n---\nTwo.\n")
      assert.notStrictEqual(BundleConfig.fingerprint(yield* load(dir)), first)
    }))
})
