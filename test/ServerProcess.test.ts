import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { api, start } from "./support/serverProcess.ts"

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
