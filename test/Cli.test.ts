import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import * as childProcess from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { start } from "./support/serverProcess.ts"
import { tsxLoader } from "./support/tsx.ts"

const main = path.join(import.meta.dirname, "..", "src", "bin", "esb.ts")
const withoutToken = Object.fromEntries(Object.entries(process.env).filter(([key]) => key !== "ESB_TOKEN"))

interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs `esb <args>` as a person would, with `input` on stdin; answers what it printed and its exit code. */
const esb = (args: ReadonlyArray<string>, input = "") =>
  Effect.callback<Ran>((resume) => {
    const child = childProcess.spawn(process.execPath, ["--import", tsxLoader, main, ...args], {
      stdio: ["pipe", "pipe", "pipe"],
      env: withoutToken
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
    child.on("close", (code) => resume(Effect.succeed({ code, stdout, stderr })))
    child.stdin.end(input)
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const workspace = Effect.gen(function*() {
  const files = yield* FileSystem.FileSystem
  const dataDir = yield* files.makeTempDirectoryScoped({ prefix: "esb-cli-" })
  const workingDir = fs.realpathSync(yield* files.makeTempDirectoryScoped({ prefix: "esb-work-" }))
  fs.writeFileSync(path.join(workingDir, "readme.txt"), "hello")
  return { dataDir, workingDir }
})

describe("the esb CLI", () => {
  it.live(
    "chat streams replies, answers an approval from stdin, and sessions lists, shows and ends",
    () =>
      Effect.gen(function*() {
        const { dataDir, workingDir } = yield* workspace
        const server = yield* start(dataDir)
        const connection = ["--url", server.url, "--data", dataDir]
        const chat = yield* esb(
          ["chat", ...connection, "--working-dir", workingDir],
          "list the files\nwrite hello to notes.txt\ny\n"
        )
        assert.strictEqual(chat.code, 0, chat.stderr)
        assert.include(chat.stdout, "⚙ list_directory")
        assert.include(chat.stdout, "readme.txt")
        assert.include(chat.stdout, "? Write 6 bytes to notes.txt Allow? [y/N] y")
        assert.strictEqual(fs.readFileSync(path.join(workingDir, "notes.txt"), "utf8"), "hello\n")
        const id = /Session (\S+) in/.exec(chat.stdout)?.[1] ?? ""
        assert.include(chat.stdout, `esb chat --session ${id}`, "it says how to continue")

        const listed = yield* esb(["sessions", "list", ...connection])
        assert.strictEqual(listed.code, 0, listed.stderr)
        assert.include(listed.stdout, id)
        assert.include(listed.stdout, workingDir)
        const json = yield* esb(["sessions", "list", "--json", ...connection])
        assert.deepStrictEqual(
          (JSON.parse(json.stdout) as Array<{ sessionId: string; live: boolean }>).map((s) => [s.sessionId, s.live]),
          [[id, true]]
        )
        const shown = yield* esb(["sessions", "show", id, ...connection])
        assert.include(shown.stdout, "you: list the files")
        assert.include(shown.stdout, "⚙ write_file")
        const ended = yield* esb(["sessions", "end", id, ...connection])
        assert.strictEqual(ended.code, 0)
        const afterwards = yield* esb(["sessions", "list", "--all", "--json", ...connection])
        assert.deepStrictEqual(
          (JSON.parse(afterwards.stdout) as Array<{ sessionId: string; ended: boolean }>).map((
            s
          ) => [s.sessionId, s.ended]),
          [[id, true]]
        )

        // a denied approval writes nothing
        const denied = yield* esb(
          ["chat", ...connection, "--working-dir", workingDir],
          "write secret to other.txt\nn\n"
        )
        assert.strictEqual(denied.code, 0, denied.stderr)
        assert.isFalse(fs.existsSync(path.join(workingDir, "other.txt")))
      }).pipe(Effect.provide(NodeFileSystem.layer)),
    90_000
  )

  it.live(
    "a client command says what to do when the server is down or the token is missing",
    () =>
      Effect.gen(function*() {
        const { dataDir } = yield* workspace
        fs.writeFileSync(path.join(dataDir, "token"), "some-token\n", { mode: 0o600 })
        const down = yield* esb(["sessions", "list", "--url", "http://127.0.0.1:9", "--data", dataDir])
        assert.strictEqual(down.code, 1)
        assert.include(down.stderr, "cannot reach the server at http://127.0.0.1:9: start it with `npm start`")
        const tokenless = yield* esb(["chat", "--url", "http://127.0.0.1:9", "--data", path.join(dataDir, "none")])
        assert.strictEqual(tokenless.code, 1)
        assert.include(tokenless.stderr, "no access token: set ESB_TOKEN")
      }).pipe(Effect.provide(NodeFileSystem.layer)),
    60_000
  )

  it.live(
    "doctor passes on a sane setup and fails on a bad bundle, naming the file and the field",
    () =>
      Effect.gen(function*() {
        const { dataDir, workingDir } = yield* workspace
        const good = yield* esb(["doctor", "--data", dataDir, "--url", "http://127.0.0.1:9"])
        assert.strictEqual(good.code, 0, good.stdout + good.stderr)
        assert.match(good.stdout, /ok\s+bundle\s+the embedded default bundle/)
        assert.match(good.stdout, /warn\s+server\s+nothing answers/)
        const bad = path.join(workingDir, "bundle.md")
        fs.writeFileSync(bad, "---\nbundle:\n  name: demo\ntools:\n  - config: {}\n---\n")
        const failing = yield* esb(["doctor", "--data", dataDir, "--url", "http://127.0.0.1:9", "--bundle", workingDir])
        assert.strictEqual(failing.code, 1)
        assert.match(failing.stdout, /fail\s+bundle/)
        assert.include(failing.stdout, "tools[0].module")
        assert.include(failing.stdout, bad)
        assert.include(failing.stderr, "1 check failed")
      }).pipe(Effect.provide(NodeFileSystem.layer)),
    60_000
  )
})

/** `esb chat` in a pseudo-terminal (`script`), driven key by key: waits for `expect` before typing `keys`. */
const chatInTerminal = (args: ReadonlyArray<string>, steps: ReadonlyArray<readonly [expect: string, keys: string]>) =>
  Effect.callback<string>((resume) => {
    const command = [process.execPath, "--import", tsxLoader, main, "chat", ...args].map((a) => `'${a}'`).join(" ")
    const child = childProcess.spawn("script", ["-qfec", command, "/dev/null"], {
      stdio: ["pipe", "pipe", "pipe"],
      env: withoutToken
    })
    let output = ""
    let next = 0
    // each expectation is looked for after the previous one's match
    let from = 0
    const advance = () => {
      while (next < steps.length) {
        const at = output.indexOf(steps[next][0], from)
        if (at === -1) return
        from = at + steps[next][0].length
        child.stdin.write(steps[next][1])
        next++
      }
    }
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString()
      advance()
    })
    child.on("close", () => resume(Effect.succeed(output)))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

describe("esb chat in a terminal", () => {
  it.live.skipIf(!fs.existsSync("/usr/bin/script"))(
    "Ctrl-C stops the turn (gracefully, then now), the next message works, Ctrl-C at the prompt exits",
    () =>
      Effect.gen(function*() {
        const { dataDir, workingDir } = yield* workspace
        const server = yield* start(dataDir)
        const output = yield* chatInTerminal(["--url", server.url, "--data", dataDir, "--working-dir", workingDir], [
          ["Ctrl-D exits.", "run sleep 30\r"],
          ["Allow? [y/N]", "y\r"],
          ["⚙ run_command", "\u0003"],
          ["Ctrl-C again stops now", "\u0003"],
          ["(turn cancelled)", "hello\r"],
          ["You said: hello", ""],
          // back at the prompt: Ctrl-C there exits
          ["> ", "\u0003"]
        ])
        assert.include(output, "(stopping after this step; Ctrl-C again stops now)")
        assert.include(output, "(stopping now)")
        assert.include(output, "You said: hello")
        assert.include(output, "Bye. Continue later with: esb chat --session")
        assert.notInclude(output, "the turn failed")
      }).pipe(Effect.provide(NodeFileSystem.layer)),
    60_000
  )
})
