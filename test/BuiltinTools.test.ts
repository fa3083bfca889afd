import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, FileSystem, Option, Stream } from "effect"
import type { Tool, Toolkit } from "effect/ai"
import { TestClock } from "effect/testing"
import * as fs from "node:fs"
import * as path from "node:path"
import * as BuiltinTools from "../src/BuiltinTools.ts"

type Tools = Toolkit.Tools<typeof BuiltinTools.toolkit>

/** A working directory with a sibling `outside` folder holding a secret the tools must never reach. */
const makeWorkspace = Effect.gen(function*() {
  const fileSystem = yield* FileSystem.FileSystem
  const base = fs.realpathSync(yield* fileSystem.makeTempDirectoryScoped({ prefix: "builtin-tools-" }))
  const root = path.join(base, "work")
  const outside = path.join(base, "outside")
  fs.mkdirSync(root)
  fs.mkdirSync(outside)
  const secret = path.join(outside, "secret.txt")
  fs.writeFileSync(secret, "top secret\n")
  const withHandler = yield* Effect.provideContext(BuiltinTools.toolkit, yield* BuiltinTools.handlers(root))
  /** Runs one call as the orchestrator does: `handle`, then the last non-preliminary result. */
  const call = <Name extends keyof Tools>(name: Name, params: Tool.ParametersEncoded<Tools[Name]>) =>
    withHandler.handle(name, params, `call-${String(name)}`).pipe(
      Effect.flatMap((results) => Stream.runLast(Stream.filter(results, (result) => !result.preliminary))),
      Effect.map(Option.getOrThrow)
    )
  /** A call that must come back as a returned failure; its message. */
  const refused = <Name extends keyof Tools>(name: Name, params: Tool.ParametersEncoded<Tools[Name]>) =>
    Effect.map(call(name, params), (outcome) => {
      assert.isTrue(outcome.isFailure, `${String(name)} ${JSON.stringify(params)} should fail`)
      return (outcome.encodedResult as { readonly message: string }).message
    })
  return { root, outside, secret, call, refused }
}).pipe(Effect.provide(NodeServices.layer))

const success = <A>(outcome: { readonly isFailure: boolean; readonly result: unknown }): A => {
  assert.isFalse(outcome.isFailure, JSON.stringify(outcome.result))
  return outcome.result as A
}

/** Waits in real time for `file` to have content, while the test clock stands still. */
const waitForFile = (file: string) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 500; attempt++) {
      const content = fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim() : ""
      if (content !== "") return content
      yield* TestClock.withLive(Effect.sleep("10 millis"))
    }
    return yield* Effect.die(new Error(`${file} never appeared`))
  })

/** Whether `pid` is a running process (a zombie nobody reaped counts as gone). */
const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    return !/^\d+ \(.*\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"))
  } catch {
    return false
  }
}

const waitUntilGone = (pid: number, pause = TestClock.withLive(Effect.sleep("10 millis"))) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 300 && isRunning(pid); attempt++) yield* pause
    return !isRunning(pid)
  })

describe("BuiltinTools", () => {
  describe("files", () => {
    it.effect("writes, reads and lists through toolkit.handle", () =>
      Effect.gen(function*() {
        const { call, root } = yield* makeWorkspace
        const written = success<{ path: string; bytes: number }>(
          yield* call("write_file", { path: "notes/todo.md", content: "- café\n- tea\n" })
        )
        assert.deepStrictEqual(written, { path: path.join("notes", "todo.md"), bytes: 14 })
        assert.strictEqual(fs.readFileSync(path.join(root, "notes", "todo.md"), "utf8"), "- café\n- tea\n")

        assert.strictEqual(success(yield* call("read_file", { path: "notes/todo.md" })), "- café\n- tea\n")

        fs.writeFileSync(path.join(root, "b.txt"), "12345")
        fs.symlinkSync("b.txt", path.join(root, "a-link"))
        const listing = success<ReadonlyArray<BuiltinTools.DirectoryEntry>>(yield* call("list_directory", {}))
        assert.deepStrictEqual(listing.map(({ name, type }) => ({ name, type })), [
          { name: "a-link", type: "symlink" },
          { name: "b.txt", type: "file" },
          { name: "notes", type: "directory" }
        ])
        assert.strictEqual(listing[1]?.size, 5)
        const nested = success<ReadonlyArray<BuiltinTools.DirectoryEntry>>(
          yield* call("list_directory", { path: "notes" })
        )
        assert.deepStrictEqual(nested, [{ name: "todo.md", type: "file", size: 14 }])
      }))

    it.effect("write_file creates missing parent folders and replaces an existing file", () =>
      Effect.gen(function*() {
        const { call, root } = yield* makeWorkspace
        success(yield* call("write_file", { path: "a/b/c/deep.txt", content: "first" }))
        success(yield* call("write_file", { path: "a/b/c/deep.txt", content: "second" }))
        assert.strictEqual(fs.readFileSync(path.join(root, "a", "b", "c", "deep.txt"), "utf8"), "second")
      }))

    it.effect("read_file returns the lines asked for with offset and limit", () =>
      Effect.gen(function*() {
        const { call, root } = yield* makeWorkspace
        const lines = Array.from({ length: 10 }, (_, i) => `line ${i + 1}\n`).join("")
        fs.writeFileSync(path.join(root, "ten.txt"), lines)
        assert.strictEqual(
          success(yield* call("read_file", { path: "ten.txt", offset: 3, limit: 2 })),
          "line 3\nline 4\n"
        )
        assert.strictEqual(success(yield* call("read_file", { path: "ten.txt", offset: 9 })), "line 9\nline 10\n")
        assert.strictEqual(success(yield* call("read_file", { path: "ten.txt", limit: 1 })), "line 1\n")
        assert.include(success<string>(yield* call("read_file", { path: "ten.txt", offset: 50 })), "past the end")
      }))

    it.effect("read_file stops at 256 KiB with a note saying where to continue", () =>
      Effect.gen(function*() {
        const { call, root } = yield* makeWorkspace
        const line = `${"x".repeat(1023)}\n`
        fs.writeFileSync(path.join(root, "big.txt"), line.repeat(300))
        const first = success<string>(yield* call("read_file", { path: "big.txt" }))
        const [body, note] = first.split("\n[truncated")
        assert.strictEqual(body, line.repeat(256))
        assert.include(note, "offset=257")
        const rest = success<string>(yield* call("read_file", { path: "big.txt", offset: 257 }))
        assert.strictEqual(rest, line.repeat(44))
      }))

    it.effect("failures come back to the model as { message } results", () =>
      Effect.gen(function*() {
        const { refused, root } = yield* makeWorkspace
        fs.mkdirSync(path.join(root, "dir"))
        fs.writeFileSync(path.join(root, "blob.bin"), new Uint8Array([1, 0, 2, 0]))
        assert.include(yield* refused("read_file", { path: "missing.txt" }), "missing.txt: no such file or directory")
        assert.include(yield* refused("read_file", { path: "dir" }), "is a directory")
        assert.include(yield* refused("read_file", { path: "blob.bin" }), "binary")
        assert.include(yield* refused("list_directory", { path: "nope" }), "nope: no such file or directory")
      }))
  })

  describe("confinement", () => {
    it.effect("refuses every way out of the working directory and leaves the outside untouched", () =>
      Effect.gen(function*() {
        const { outside, refused, root, secret } = yield* makeWorkspace
        fs.symlinkSync(outside, path.join(root, "escape"))
        fs.symlinkSync(secret, path.join(root, "leak.txt"))
        fs.symlinkSync(path.join(outside, "planted.txt"), path.join(root, "dangling.txt"))
        const escapes = [
          "../outside/secret.txt",
          "sub/../../outside/secret.txt",
          secret,
          "escape/secret.txt",
          "leak.txt",
          "~/secret.txt"
        ]
        for (const attempt of escapes) {
          assert.include(yield* refused("read_file", { path: attempt }), "Refused", attempt)
          assert.include(yield* refused("write_file", { path: attempt, content: "pwned" }), "Refused", attempt)
        }
        assert.include(yield* refused("write_file", { path: "dangling.txt", content: "pwned" }), "Refused")
        assert.include(yield* refused("write_file", { path: "escape/new/file.txt", content: "pwned" }), "Refused")
        assert.include(yield* refused("list_directory", { path: ".." }), "Refused")
        assert.include(yield* refused("list_directory", { path: "escape" }), "Refused")
        assert.include(yield* refused("list_directory", { path: "/" }), "Refused")

        assert.strictEqual(fs.readFileSync(secret, "utf8"), "top secret\n")
        assert.deepStrictEqual(fs.readdirSync(outside), ["secret.txt"])
      }))

    it.effect("accepts absolute paths and links that stay inside", () =>
      Effect.gen(function*() {
        const { call, root } = yield* makeWorkspace
        fs.writeFileSync(path.join(root, "inner.txt"), "inside")
        fs.symlinkSync("inner.txt", path.join(root, "alias.txt"))
        assert.strictEqual(success(yield* call("read_file", { path: path.join(root, "inner.txt") })), "inside")
        assert.strictEqual(success(yield* call("read_file", { path: "alias.txt" })), "inside")
        assert.strictEqual(success(yield* call("read_file", { path: "./x/../inner.txt" })), "inside")
      }))
  })

  describe("run_command", () => {
    it.effect("returns the exit code, stdout and stderr", () =>
      Effect.gen(function*() {
        const { call } = yield* makeWorkspace
        const result = success<BuiltinTools.CommandResult>(
          yield* call("run_command", { command: "echo hello; echo oops >&2; exit 3" })
        )
        assert.deepStrictEqual(result, { exitCode: 3, stdout: "hello\n", stderr: "oops\n", timedOut: false })
      }))

    it.effect("runs in the working directory", () =>
      Effect.gen(function*() {
        const { call, root } = yield* makeWorkspace
        const result = success<BuiltinTools.CommandResult>(
          yield* call("run_command", { command: "pwd; echo made > made.txt" })
        )
        assert.strictEqual(result.stdout, `${root}\n`)
        assert.strictEqual(fs.readFileSync(path.join(root, "made.txt"), "utf8"), "made\n")
      }))

    it.effect("caps each output at 64 KiB with a note", () =>
      Effect.gen(function*() {
        const { call } = yield* makeWorkspace
        const result = success<BuiltinTools.CommandResult>(
          yield* call("run_command", { command: "head -c 100000 /dev/zero | tr '\\0' a; echo done >&2" })
        )
        const [kept, note] = result.stdout.split("\n[stdout truncated")
        assert.strictEqual(kept, "a".repeat(64 * 1024))
        assert.include(note, "100000 bytes")
        assert.strictEqual(result.stderr, "done\n")
        assert.strictEqual(result.exitCode, 0)
      }))

    it.effect("kills the command when its time runs out on the clock", () =>
      Effect.gen(function*() {
        const { call, root } = yield* makeWorkspace
        const fiber = yield* call("run_command", {
          command: "echo started; echo $$ > pid.txt; exec sleep 30",
          timeout_seconds: 5
        }).pipe(Effect.forkChild)
        const pid = Number(yield* waitForFile(path.join(root, "pid.txt")))
        yield* TestClock.adjust("4 seconds")
        assert.isTrue(isRunning(pid), "still running before the time-out")
        yield* TestClock.adjust("1 second")
        const result = success<BuiltinTools.CommandResult>(yield* Fiber.join(fiber))
        assert.isTrue(result.timedOut)
        assert.isNull(result.exitCode)
        assert.strictEqual(result.stdout, "started\n")
        assert.include(result.stderr, "killed after 5 seconds")
        assert.isTrue(yield* waitUntilGone(pid))
      }))

    it.effect("interrupting the call kills the process", () =>
      Effect.gen(function*() {
        const { call, root } = yield* makeWorkspace
        const fiber = yield* call("run_command", { command: "echo $$ > pid.txt; exec sleep 30" }).pipe(Effect.forkChild)
        const pid = Number(yield* waitForFile(path.join(root, "pid.txt")))
        assert.isTrue(isRunning(pid))
        yield* Fiber.interrupt(fiber)
        assert.isTrue(yield* waitUntilGone(pid))
        assert.throws(() => process.kill(pid, 0))
      }))

    it.effect("interrupting the call also kills what the command started", () =>
      Effect.gen(function*() {
        const { call, root } = yield* makeWorkspace
        const fiber = yield* call("run_command", { command: "sleep 30 & echo $! > pid.txt; wait" }).pipe(
          Effect.forkChild
        )
        const pid = Number(yield* waitForFile(path.join(root, "pid.txt")))
        assert.isTrue(isRunning(pid))
        yield* Fiber.interrupt(fiber)
        assert.isTrue(yield* waitUntilGone(pid), "the background sleep is gone")
      }))

    it.live("does not wait for a process left in the background, and ends it", () =>
      Effect.gen(function*() {
        const { call, root } = yield* makeWorkspace
        const result = success<BuiltinTools.CommandResult>(
          yield* call("run_command", { command: "sleep 30 & echo $! > pid.txt; echo left" }).pipe(
            Effect.timeout("10 seconds")
          )
        )
        assert.deepStrictEqual(result, { exitCode: 0, stdout: "left\n", stderr: "", timedOut: false })
        const pid = Number(fs.readFileSync(path.join(root, "pid.txt"), "utf8"))
        assert.isTrue(yield* waitUntilGone(pid, Effect.sleep("10 millis")), "the background sleep is gone")
      }))
  })

  describe("definitions", () => {
    it("asks for approval exactly for write_file and run_command", () => {
      const needing = Object.values(BuiltinTools.toolkit.tools)
        .filter((tool) => tool.needsApproval === true)
        .map((tool) => tool.name)
      assert.deepStrictEqual(needing.sort(), ["run_command", "write_file"])
      assert.deepStrictEqual(Object.keys(BuiltinTools.readOnlyToolkit.tools).sort(), ["list_directory", "read_file"])
    })

    it("maps the origin's module ids to the tools", () => {
      assert.deepStrictEqual(BuiltinTools.moduleTools["tool-filesystem"], ["read_file", "list_directory", "write_file"])
      assert.deepStrictEqual(BuiltinTools.moduleTools["tool-bash"], ["run_command"])
      assert.isUndefined(BuiltinTools.moduleTools["tool-web"])
    })

    it("describes calls in one line for the approval prompt", () => {
      const describe = BuiltinTools.describeCall
      assert.strictEqual(
        describe("write_file", { path: "notes/todo.md", content: "x".repeat(120) }),
        "Write 120 bytes to notes/todo.md"
      )
      assert.strictEqual(describe("write_file", { path: "a.txt", content: "é" }), "Write 2 bytes to a.txt")
      assert.strictEqual(
        describe("run_command", { command: "npm test" }, "/home/u/project"),
        "Run `npm test` in /home/u/project"
      )
      assert.strictEqual(describe("run_command", { command: "npm test" }), "Run `npm test` in the working directory")
      assert.strictEqual(
        describe("run_command", { command: "make\nmake install", timeout_seconds: 30 }, "/p"),
        "Run `make ⏎ make install` in /p (time limit 30 s)"
      )
      assert.strictEqual(describe("read_file", { path: "src/a.ts", offset: 10, limit: 5 }), "Read src/a.ts lines 10–14")
      assert.strictEqual(describe("list_directory", {}, "/p"), "List /p")
      assert.strictEqual(describe("list_directory", { path: "src" }), "List the directory src")
      assert.strictEqual(describe("other", { a: 1 }), "Call other({\"a\":1})")
      assert.notInclude(describe("run_command", { command: "x".repeat(1000) }), "x".repeat(201))
    })
  })
})
