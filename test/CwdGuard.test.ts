import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, Layer, Ref } from "effect"
import { BundleLoader, CwdGuard, Testing } from "effect-session-backend"
import * as childProcess from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { tsxLoader } from "./support/tsx.ts"

const fixture = path.join(import.meta.dirname, "fixtures", "cwdChild.ts")

/** Runs the fixture in `cwd`, deletes `cwd` once it is up, lets it load a bundle, and returns what it printed. */
const runChild = (cwd: string, home: string, mode: "guarded" | "bare") =>
  Effect.callback<Record<string, string>, Error>((resume) => {
    const child = childProcess.spawn(process.execPath, ["--import", tsxLoader, fixture, home, mode], {
      cwd,
      stdio: ["pipe", "pipe", "inherit"]
    })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString()
      if (output === "ready\n") {
        fs.rmSync(cwd, { recursive: true, force: true })
        child.stdin.write("go\n")
      }
    })
    child.on("error", (error) => resume(Effect.fail(error)))
    child.on("close", () => {
      const last = output.trim().split("\n").at(-1) ?? ""
      try {
        resume(Effect.succeed(JSON.parse(last) as Record<string, string>))
      } catch {
        resume(Effect.fail(new Error(`unexpected output: ${output}`)))
      }
    })
    return Effect.sync(() => child.kill())
  })

const tempDir = (prefix: string) =>
  FileSystem.FileSystem.pipe(
    Effect.flatMap((files) => files.makeTempDirectoryScoped({ prefix })),
    Effect.provide(NodeFileSystem.layer)
  )

describe("CwdGuard", () => {
  it.live("a process whose cwd was deleted still loads bundles: the guard moves it home", () =>
    Effect.gen(function*() {
      const home = yield* tempDir("esb-home-")
      const doomed = yield* tempDir("esb-cwd-")
      for (const dir of [home, doomed]) fs.writeFileSync(path.join(dir, "bundle.md"), "# a bundle\n")
      const result = yield* runChild(doomed, home, "guarded")
      assert.strictEqual(result.loaded, "scripted", JSON.stringify(result))
      assert.strictEqual(fs.realpathSync(result.cwd), fs.realpathSync(home))
    }), 30_000)

  it.live("without the guard the same process fails (the origin's bug)", () =>
    Effect.gen(function*() {
      const home = yield* tempDir("esb-home-")
      const doomed = yield* tempDir("esb-cwd-")
      for (const dir of [home, doomed]) fs.writeFileSync(path.join(dir, "bundle.md"), "# a bundle\n")
      const result = yield* runChild(doomed, home, "bare")
      assert.match(result.failed ?? "", /ENOENT/)
    }), 30_000)

  it.effect("the guarded loader runs ensure before every load; ensure does nothing while the cwd exists", () =>
    Effect.gen(function*() {
      const ensures = yield* Ref.make(0)
      const cwd = process.cwd()
      const counting = Layer.succeed(CwdGuard.CwdGuard, {
        ensure: Effect.andThen(Ref.update(ensures, (n) => n + 1), CwdGuard.make("/nonexistent-home").ensure)
      })
      yield* Effect.gen(function*() {
        const loader = yield* BundleLoader.BundleLoader
        yield* loader.load()
        yield* loader.load()
      }).pipe(
        Effect.provide(
          CwdGuard.layerGuardedBundleLoader.pipe(Layer.provide([Testing.layerBundleLoader(), counting]))
        )
      )
      assert.strictEqual(yield* Ref.get(ensures), 2)
      assert.strictEqual(process.cwd(), cwd)
    }))
})
