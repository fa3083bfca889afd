/**
 * Embedding the backend in an Effect program: one layer, typed errors, events.
 * Run it with `npx tsx docs/examples/embed.ts`.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Fiber, Stream } from "effect"
import { SessionBackend, Testing } from "../../src/index.ts"

// The engine: until real bundles land, a scripted one. Each prompt streams an answer.
const script: Testing.Script = (prompt) => [
  Testing.stream(["Echo: ", prompt], { every: "50 millis" })
]

const program = Effect.gen(function*() {
  const sessions = yield* SessionBackend.SessionBackend
  const { sessionId } = yield* sessions.createSession({ workingDir: "~/projects/demo", app: "example" })

  // Every event of the session, printed as it happens.
  const printer = yield* sessions.events(sessionId, { after: 0 }).pipe(
    Stream.runForEach((event) => Console.log(`#${event.seq} ${event._tag}`)),
    Effect.forkChild
  )

  // Messages to one session run one at a time, in order; each sender gets its own reply.
  const replies = yield* Effect.forEach(["one", "two", "three"], (text) => sessions.sendMessage(sessionId, text), {
    concurrency: "unbounded"
  })
  yield* Console.log(replies)

  // Failures are typed: match on the tag.
  yield* sessions.sendMessage("no-such-session", "hi").pipe(
    Effect.catchTag("SessionNotFound", (error) => Console.log(`as expected: ${error.message}`))
  )

  yield* sessions.endSession(sessionId) // the event stream ends with session:end
  yield* Fiber.join(printer)
})

// One layer: the backend over the scripted engine. Closing it stops every session.
program.pipe(Effect.provide(Testing.layer({ script })), NodeRuntime.runMain)
