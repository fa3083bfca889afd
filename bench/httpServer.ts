/**
 * The server the HTTP benchmark measures: the real `SessionServer` on
 * 127.0.0.1 over the backend with the echo engine and the in-memory store
 * (so the figures are the HTTP layer's and the backend's, not the disk's).
 * Prints its URL; the token is the first argument.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Redacted } from "effect"
import { SessionServer, Testing } from "../src/index.ts"

const token = process.argv[2] ?? "bench-token"

Effect.gen(function*() {
  const context = yield* Layer.build(
    SessionServer.layer({ port: 0, token: Redacted.make(token) }).pipe(
      Layer.provide(Testing.layer({ backend: { mailboxCapacity: 1024, replayWindow: 4096 } }))
    )
  )
  yield* Console.log(`listening on ${yield* SessionServer.url.pipe(Effect.provide(context))}`)
  return yield* Effect.never
}).pipe(Effect.scoped, NodeRuntime.runMain)
