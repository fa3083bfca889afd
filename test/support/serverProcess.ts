/**
 * The real server as a child process (`esb serve --port 0 --data <dir>`, as
 * `npm start` runs it), for the tests that restart it or drive it from a browser.
 */
import { Effect } from "effect"
import * as childProcess from "node:child_process"
import * as path from "node:path"
import { tsxLoader } from "./tsx.ts"

const main = path.join(import.meta.dirname, "..", "..", "src", "bin", "esb.ts")

/** A started server. */
export interface Running {
  readonly url: string
  readonly output: () => string
  /** Sends the signal and waits for the exit; answers the exit code. */
  readonly stop: (signal: NodeJS.Signals) => Effect.Effect<number | null>
}

/** The environment without `ESB_TOKEN`, so the server uses (and writes) its token file. */
const withoutToken = Object.fromEntries(Object.entries(process.env).filter(([key]) => key !== "ESB_TOKEN"))

/** Starts `esb serve` on a free port with `dataDir`, as `npm start` would; waits until it listens. */
export const start = (dataDir: string) =>
  Effect.acquireRelease(
    Effect.callback<Running & { readonly child: childProcess.ChildProcess }, Error>((resume) => {
      const child = childProcess.spawn(
        process.execPath,
        ["--import", tsxLoader, main, "serve", "--port", "0", "--data", dataDir],
        { stdio: ["ignore", "pipe", "pipe"], env: withoutToken }
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

/** One JSON request to the API with the token. */
export const api = (url: string, token: string, method: string, route: string, body?: unknown) =>
  Effect.promise(async () => {
    const response = await fetch(`${url}/api${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: body === undefined ? null : JSON.stringify(body)
    })
    return { status: response.status, json: await response.json().catch(() => ({})) as Record<string, unknown> }
  })
