/**
 * A walk through the session backend in the terminal, on the scripted engine:
 * streamed replies, a tool call, an approval, an immediate cancel and an end.
 * `npm start` runs it until the HTTP server lands.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Fiber, Stream } from "effect"
import { SessionBackend, SessionEvent, Testing } from "../index.ts"

const words = (text: string) => text.split(/(?<= )/)

const script: Testing.Script = (prompt) => {
  if (prompt.startsWith("deploy")) {
    return [
      Testing.stream(words("Deploying needs your approval. "), { every: "60 millis" }),
      Testing.approval({ prompt: `Run "${prompt}" on production?`, timeout: "30 seconds" }),
      Testing.toolCall("deploy", { target: "production" }, Effect.succeed({ status: "deployed" })),
      Testing.reply("Deployed.")
    ]
  }
  if (prompt === "long task") {
    return [
      Testing.stream(words("Starting a task that takes an hour... "), { every: "60 millis" }),
      Testing.sleep("1 hour")
    ]
  }
  return [
    Testing.toolCall("word_count", { text: prompt }, Effect.succeed(prompt.split(/\s+/).length)),
    Testing.stream(words(`You said "${prompt}", which has ${prompt.split(/\s+/).length} words.`), {
      every: "60 millis"
    })
  ]
}

/** Prints a session's events as a chat client would. */
const render = (event: SessionEvent.SessionEvent): Effect.Effect<void> => {
  switch (event._tag) {
    case "prompt:submit":
      return Console.log(`\n#${event.seq} you> ${event.prompt}`)
    case "content_block:delta":
      return Effect.sync(() => void process.stdout.write(event.delta))
    case "content_block:end":
      return Console.log("")
    case "tool:pre":
      return Console.log(`#${event.seq} [tool ${event.tool} ${JSON.stringify(event.arguments)}]`)
    case "tool:post":
      return Console.log(`#${event.seq} [tool ${event.tool} -> ${JSON.stringify(event.result)}]`)
    case "approval:required":
      return Console.log(`#${event.seq} [approval asked: ${event.prompt} ${JSON.stringify(event.options)}]`)
    case "approval:granted":
    case "approval:denied":
      return Console.log(`#${event.seq} [${event._tag}: ${event.choice}]`)
    case "cancel:requested":
    case "cancel:completed":
      return Console.log(`#${event.seq} [${event._tag} (${event.level})]`)
    case "orchestrator:complete":
      return Console.log(`#${event.seq} [turn ${event.turn} ${event.status}]`)
    case "session:start":
    case "session:end":
      return Console.log(`#${event.seq} [${event._tag}]`)
    default:
      return Effect.void
  }
}

const demo = Effect.gen(function*() {
  const sessions = yield* SessionBackend.SessionBackend
  const info = yield* sessions.createSession({ workingDir: "~", app: "demo" })
  yield* Console.log(`session ${info.sessionId} in ${info.workingDir} (bundle ${info.bundle})`)
  const printer = yield* sessions.events(info.sessionId, { after: 0 }).pipe(Stream.runForEach(render), Effect.forkChild)

  yield* sessions.sendMessage(info.sessionId, "hello there, session backend")

  // a person answers the approval the deploy turn asks for
  const approver = yield* sessions.events(info.sessionId).pipe(
    Stream.filter((event) => event._tag === "approval:required"),
    Stream.runForEach((event) =>
      Effect.sleep("500 millis").pipe(
        Effect.andThen(sessions.resolveApproval(info.sessionId, event.requestId, "allow"))
      )
    ),
    Effect.forkChild
  )
  yield* sessions.sendMessage(info.sessionId, "deploy v2")
  yield* Fiber.interrupt(approver)

  const long = yield* sessions.sendMessage(info.sessionId, "long task").pipe(Effect.flip, Effect.forkChild)
  yield* Effect.sleep("2 seconds")
  yield* sessions.cancelSession(info.sessionId, "immediate")
  const cancelled = yield* Fiber.join(long)
  yield* Console.log(
    `the sender of "long task" got ${cancelled._tag}${
      cancelled._tag === "TurnCancelled" ? ` (${cancelled.level})` : ""
    }`
  )

  yield* sessions.endSession(info.sessionId)
  yield* Fiber.join(printer)
  const after = yield* sessions.sendMessage(info.sessionId, "anyone there?").pipe(Effect.flip)
  yield* Console.log(`a message after the end gets ${after._tag}`)
})

demo.pipe(Effect.provide(Testing.layer({ script, name: "demo" })), NodeRuntime.runMain)
