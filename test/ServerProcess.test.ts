import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import * as childProcess from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { tsxLoader } from "./support/tsx.ts"

const main = path.join(import.meta.dirname, "..", "src", "bin", "esb.ts")

interface Running {
  readonly url: string
  readonly output: () => string
  /** Sends the signal and waits for the exit; answers the exit code. */
  readonly stop: (signal: NodeJS.Signals) => Effect.Effect<number | null>
}

/** Starts `esb serve` on a free port with `dataDir`, as `npm start` would; waits until it listens. */
const start = (dataDir: string) =>
  Effect.acquireRelease(
    Effect.callback<Running & { readonly child: childProcess.ChildProcess }, Error>((resume) => {
      const child = childProcess.spawn(
        process.execPath,
        ["--import", tsxLoader, main, "serve", "--port", "0", "--data", dataDir],
        { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ESB_TOKEN: "" } }
      )
      let output = ""
      let started = false
      const exited = new Promise<number | null>((done) => child.on("exit", (code) => done(code)))
      const onData = (chunk: Buffer) => {
        output += chunk.toString()
        const url = /listening on (http:\/\/[\d.:]+)/.exec(output)?.[1]
        if (!started && url !== undefined) {
          started = true
          resume(Effect.succeed({
            child,
            url,
            output: () => output,
            stop: (signal) =>
              Effect.promise(() => {
                child.kill(signal)
                return exited
              })
          }))
        }
      }
      child.stdout.on("data", onData)
      child.stderr.on("data", onData)
      child.on("exit", () => {
        if (!started) resume(Effect.fail(new Error(`the server did not start:\n${output}`)))
      })
    }),
    (running) => Effect.sync(() => running.child.kill("SIGKILL"))
  )

const api = (url: string, token: string, method: string, route: string, body?: unknown) =>
  Effect.promise(async () => {
    const response = await fetch(`${url}/api${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: body === undefined ? null : JSON.stringify(body)
    })
    return { status: response.status, json: await response.json().catch(() => ({})) as Record<string, unknown> }
  })

describe("the server process", () => {
  it.live(
    "prints how to connect, shuts down on SIGTERM, and its sessions continue after a restart",
    () =>
      Effect.gen(function*() {
        const files = yield* FileSystem.FileSystem
        const dataDir = yield* files.makeTempDirectoryScoped({ prefix: "esb-data-" })
        const workingDir = yield* files.makeTempDirectoryScoped({ prefix: "esb-work-" })
        fs.writeFileSync(path.join(workingDir, "readme.txt"), "hello")

        const first = yield* start(dataDir)
        const token = fs.readFileSync(path.join(dataDir, "token"), "utf8").trim()
        assert.strictEqual(fs.statSync(path.join(dataDir, "token")).mode & 0o777, 0o600)
        assert.include(first.output(), `${first.url}/#token=${token}`)
        assert.include(first.output(), dataDir)
        const created = yield* api(first.url, token, "POST", "/sessions", { workingDir })
        assert.strictEqual(created.status, 201)
        const id = created.json.sessionId as string
        const reply = yield* api(first.url, token, "POST", `/sessions/${id}/messages`, { text: "list the files" })
        assert.include(String(reply.json.reply), "readme.txt")
        assert.strictEqual(yield* first.stop("SIGTERM"), 0, "a clean exit")
        assert.include(first.output(), "Shutting down: stopping 1 live session")
        assert.include(first.output(), "Stopped.")

        const second = yield* start(dataDir)
        const stored = yield* api(second.url, token, "GET", "/stored-sessions")
        assert.strictEqual(stored.status, 200, "the same token is used again")
        const again = yield* api(second.url, token, "POST", `/sessions/${id}/messages`, { text: "hi again" })
        assert.strictEqual(again.status, 200)
        assert.include(String(again.json.reply), "hi again")
        const transcript = yield* api(second.url, token, "GET", `/sessions/${id}/transcript`)
        const roles = (transcript.json.messages as Array<{ role: string }>).map((m) => m.role)
        assert.deepStrictEqual(roles, ["user", "assistant", "tool", "assistant", "user", "assistant"])
        assert.strictEqual(yield* second.stop("SIGINT"), 0)
      }).pipe(Effect.provide(NodeFileSystem.layer)),
    90_000
  )
})
