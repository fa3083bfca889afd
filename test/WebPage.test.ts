import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import type { Scope } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Browser, Page } from "playwright-core"
import { chromium } from "playwright-core"
import { start } from "./support/serverProcess.ts"

const executablePath = "/usr/bin/chromium"
const available = fs.existsSync(executablePath)

/** Headless Chromium for the life of the scope, with the flags this closed network needs. */
const browser: Effect.Effect<Browser, never, Scope.Scope> = Effect.acquireRelease(
  Effect.promise(() =>
    chromium.launch({
      executablePath,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync"
      ]
    })
  ),
  (opened) => Effect.promise(() => opened.close())
)

/** Runs a browser step. */
const step = <A>(f: () => Promise<A>) => Effect.promise(f)

/** Waits until the last assistant message contains `text`. */
const answerContaining = (page: Page, text: string) =>
  step(() => page.locator(".msg.assistant", { hasText: text }).last().waitFor({ timeout: 20_000 }))

const send = (page: Page, text: string) =>
  step(async () => {
    await page.locator("#send:not([disabled])").waitFor({ timeout: 20_000 })
    await page.fill("#input", text)
    await page.click("#send")
  })

describe.skipIf(!available && process.env.CI === undefined)("the web chat page", () => {
  it.live(
    "a person chats, answers an approval, stops a turn, restarts the server and continues",
    () =>
      Effect.gen(function*() {
        const files = yield* FileSystem.FileSystem
        const dataDir = yield* files.makeTempDirectoryScoped({ prefix: "esb-web-" })
        const workingDir = fs.realpathSync(yield* files.makeTempDirectoryScoped({ prefix: "esb-work-" }))
        fs.writeFileSync(path.join(workingDir, "readme.txt"), "hello")
        const server = yield* start(dataDir)
        const token = fs.readFileSync(path.join(dataDir, "token"), "utf8").trim()
        const chromium = yield* browser
        const page = yield* step(() => chromium.newPage())

        // a new session in the working directory, and a streamed answer that used a tool
        yield* step(() => page.goto(`${server.url}/#token=${token}`))
        yield* step(() => page.locator("#sessions").waitFor())
        assert.notInclude(page.url(), token, "the token leaves the address bar")
        yield* step(() => page.fill("#cwd", workingDir))
        yield* step(() => page.click("#create"))
        yield* send(page, "list the files")
        yield* answerContaining(page, "readme.txt")
        const sessionId = yield* step(() => page.locator("#sessions li.current").getAttribute("data-session-id"))
        assert.isString(sessionId)

        // an approval: nothing is written until the person allows it
        yield* send(page, "write hello to notes.txt")
        yield* step(() => page.locator("#approval[open]").waitFor({ timeout: 20_000 }))
        assert.include(yield* step(() => page.textContent("#approval-prompt")), "notes.txt")
        assert.isFalse(fs.existsSync(path.join(workingDir, "notes.txt")))
        yield* step(() => page.click("#approval-choices button:has-text('allow')"))
        yield* answerContaining(page, "write_file returned")
        assert.strictEqual(fs.readFileSync(path.join(workingDir, "notes.txt"), "utf8"), "hello\n")

        // stop: the first press is graceful (the command keeps running), the second stops it now
        yield* send(page, "run sleep 30")
        yield* step(() => page.locator("#approval[open]").waitFor({ timeout: 20_000 }))
        yield* step(() => page.click("#approval-choices button:has-text('allow')"))
        yield* step(() => page.locator(".msg.tool", { hasText: "run_command" }).waitFor({ timeout: 20_000 }))
        yield* step(() => page.click("#stop"))
        yield* step(() => page.locator("#status", { hasText: "stopping (graceful)" }).waitFor({ timeout: 20_000 }))
        yield* step(() => page.click("#stop"))
        yield* step(() => page.locator("#status", { hasText: "turn cancelled" }).waitFor({ timeout: 20_000 }))
        yield* send(page, "are you there")
        yield* answerContaining(page, "You said: are you there")

        // the server restarts; the session is still in the list and continues where it was
        assert.strictEqual(yield* server.stop("SIGTERM"), 0)
        const again = yield* start(dataDir)
        yield* step(() => page.goto(`${again.url}/#token=${token}`))
        yield* step(() => page.click(`#sessions li[data-session-id="${sessionId}"]`))
        yield* step(() => page.locator(".msg.user", { hasText: "list the files" }).waitFor({ timeout: 20_000 }))
        yield* send(page, "still here")
        yield* answerContaining(page, "You said: still here")
        fs.mkdirSync(".tmp", { recursive: true })
        yield* step(() => page.screenshot({ path: ".tmp/webpage.png" }))

        // a wrong token: the page asks again and says why, it does not stay blank
        const stranger = yield* step(() => chromium.newPage())
        const asked: Array<string> = []
        stranger.on("dialog", (dialog) => {
          asked.push(dialog.message())
          void dialog.dismiss()
        })
        yield* step(() => stranger.goto(`${again.url}/#token=wrong`))
        yield* step(() => stranger.locator("#status", { hasText: "refused" }).waitFor({ timeout: 20_000 }))
        assert.isAtLeast(asked.length, 1)
        assert.include(asked[0], "Access token")
      }).pipe(Effect.provide(NodeFileSystem.layer)),
    120_000
  )
})
