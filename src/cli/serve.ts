/**
 * `serve`: the backend as a service on Node. It prints where it listens,
 * where data lives and how to authenticate, and on SIGINT/SIGTERM drains the
 * running turns (bounded) before it exits, saying so.
 */
import { Console, Effect, Layer, Option, Redacted } from "effect"
import { Command, Flag } from "effect/cli"
import * as NodeBackend from "../NodeBackend.ts"
import * as SessionBackend from "../SessionBackend.ts"
import * as SessionServer from "../SessionServer.ts"
import { dataDirFlag } from "./shared.ts"

/** `serve`'s flags. */
export const flags = {
  host: Flag.String("host").pipe(
    Flag.withDescription("the address to listen on; keep 127.0.0.1 unless a reverse proxy is in front"),
    Flag.withDefault("127.0.0.1")
  ),
  port: Flag.Int("port").pipe(
    Flag.withDescription("the port (0: any free port)"),
    Flag.withDefault(SessionServer.defaultPort)
  ),
  data: dataDirFlag,
  bundle: Flag.String("bundle").pipe(
    Flag.withDescription("the default bundle: a bundle.md/bundle.yaml file or a folder (default: the embedded one)"),
    Flag.optional
  )
}

/** Runs the server until interrupted. */
export const run = (options: {
  readonly host: string
  readonly port: number
  readonly data: string
  readonly bundle: Option.Option<string>
}) =>
  Effect.gen(function*() {
    const backend = NodeBackend.layer({
      home: options.data,
      ...(Option.isSome(options.bundle) ? { path: options.bundle.value } : {})
    })
    const server = SessionServer.layerWithAccessToken({ dataDir: options.data, host: options.host, port: options.port })
      .pipe(Layer.provideMerge(backend))
    const context = yield* Layer.build(server)
    const url = yield* SessionServer.url.pipe(Effect.provide(context))
    const token = yield* Effect.service(SessionServer.AccessToken).pipe(Effect.provide(context))
    const sessions = yield* Effect.service(SessionBackend.SessionBackend).pipe(Effect.provide(context))
    yield* Console.log(
      [
        `effect-session-backend is listening on ${url}`,
        `  chat in a browser:  ${url}/#token=${Redacted.value(token)}`,
        `  API:                ${url}/api (send "Authorization: Bearer <token>"; OpenAPI at /api/openapi.json)`,
        `  access token:       ${
          (process.env.ESB_TOKEN ?? "") !== "" ? "from ESB_TOKEN" : `stored in ${options.data}/token (mode 0600)`
        }`,
        `  data:               ${options.data} (transcripts under projects/)`,
        `  bundle:             ${Option.getOrElse(options.bundle, () => "the embedded default bundle")}`,
        `Press Ctrl-C to stop.`
      ].join("\n")
    )
    return yield* Effect.never.pipe(
      Effect.onInterrupt(() =>
        Effect.gen(function*() {
          const live = yield* sessions.listActiveSessions
          yield* Console.log(
            `\nShutting down: stopping ${live.length} live session${
              live.length === 1 ? "" : "s"
            } (running turns get up to 10 s to finish)…`
          )
        })
      )
    )
  }).pipe(
    Effect.scoped,
    Effect.onInterrupt(() => Console.log("Stopped."))
  )

/** The `serve` command. */
export const command = Command.make("serve", flags, run).pipe(
  Command.withDescription("Run the session backend as an HTTP service with the web chat page")
)
