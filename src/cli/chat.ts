/**
 * `chat`: a conversation with a session of a running server, in the terminal.
 * Replies stream as they are written; tool calls show as one line each; an
 * approval is asked at the prompt. Ctrl-C during a turn stops it (graceful,
 * then immediate on a second press); Ctrl-C at the prompt, or the end of the
 * input (Ctrl-D), exits.
 */
import { Console, Effect, Fiber, Option, Queue, Stream } from "effect"
import { Command, Flag } from "effect/cli"
import * as readline from "node:readline"
import * as Client from "./client.ts"
import { clientToken, dataDirFlag, urlFlag } from "./shared.ts"

type Input = { readonly _tag: "Line"; readonly text: string } | { readonly _tag: "End" }

/** The terminal's lines and Ctrl-C presses, as two queues, for the life of the scope. */
const terminal = Effect.acquireRelease(
  Effect.gen(function*() {
    const lines = yield* Queue.unbounded<Input>()
    const interrupts = yield* Queue.unbounded<void>()
    const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY })
    rl.on("line", (text) => Queue.offerUnsafe(lines, { _tag: "Line", text }))
    rl.on("close", () => Queue.offerUnsafe(lines, { _tag: "End" }))
    // in a terminal, readline turns Ctrl-C into this event instead of a signal
    rl.on("SIGINT", () => Queue.offerUnsafe(interrupts, undefined))
    return { rl, lines, interrupts }
  }),
  ({ rl }) =>
    Effect.sync(() => {
      rl.close()
      // a terminal's stdin would keep the process alive after the conversation
      process.stdin.pause()
      process.stdin.unref?.()
    })
)

const write = (text: string) => Effect.sync(() => void process.stdout.write(text))

const dim = (text: string) => process.stdout.isTTY ? `\u001b[2m${text}\u001b[22m` : text

const clip = (text: string, max = 200) => text.length > max ? `${text.slice(0, max)}…` : text

/** The `chat` command's flags. */
export const flags = {
  url: urlFlag,
  data: dataDirFlag,
  session: Flag.String("session").pipe(
    Flag.withDescription("continue this session instead of creating one"),
    Flag.optional
  ),
  workingDir: Flag.String("working-dir").pipe(
    Flag.withDescription("the new session's working directory (default: this folder)"),
    Flag.withDefault(process.cwd())
  ),
  bundle: Flag.String("bundle").pipe(Flag.withDescription("the new session's bundle"), Flag.optional)
}

/** Runs a conversation until the input ends or Ctrl-C is pressed at the prompt. */
export const run = (options: {
  readonly url: string
  readonly data: string
  readonly session: Option.Option<string>
  readonly workingDir: string
  readonly bundle: Option.Option<string>
}) =>
  Effect.gen(function*() {
    const client = yield* Client.make(options.url, yield* clientToken(options.data))
    const session = Option.isSome(options.session)
      ? yield* client.json<{ sessionId: string; workingDir: string }>(
        "POST",
        `/sessions/${encodeURIComponent(options.session.value)}/resume`,
        {}
      )
      : yield* client.json<{ sessionId: string; workingDir: string }>("POST", "/sessions", {
        workingDir: options.workingDir,
        ...(Option.isSome(options.bundle) ? { bundle: options.bundle.value } : {})
      })
    const id = session.sessionId
    yield* Console.log(
      dim(`Session ${id} in ${session.workingDir}. Ctrl-C stops a turn; Ctrl-C at the prompt or Ctrl-D exits.`)
    )
    const { interrupts, lines, rl } = yield* terminal

    /** The next line, or nothing when the input ended. */
    const nextLine = Effect.map(Queue.take(lines), (input) => input._tag === "Line" ? input.text : undefined)

    const answerApproval = (event: Client.StreamedEvent) =>
      Effect.gen(function*() {
        const options = event.options as ReadonlyArray<string>
        const allow = options.find((option) => /^(allow|approve|yes)\b/i.test(option)) ?? options[0]
        const deny = options.find((option) => option !== allow) ?? "deny"
        yield* write(`\n? ${String(event.prompt)} Allow? [y/N] `)
        const answer = yield* nextLine
        if (!process.stdin.isTTY) yield* write(`${answer ?? ""}\n`)
        const choice = answer !== undefined && /^y(es)?$/i.test(answer.trim()) ? allow : deny
        yield* client.json("POST", `/sessions/${id}/approvals/${String(event.requestId)}`, { choice }).pipe(
          Effect.catch((error) => Console.log(dim(`(the answer was not taken: ${error.message})`)))
        )
      })

    const show = (event: Client.StreamedEvent): Effect.Effect<void> => {
      switch (event._tag) {
        case "content_block:delta":
          return write(String(event.delta))
        case "content_block:end":
          return write("\n")
        case "tool:pre":
          return Console.log(dim(`⚙ ${String(event.tool)} ${clip(JSON.stringify(event.arguments))}`))
        case "tool:post":
          return Console.log(dim(`↳ ${clip(JSON.stringify(event.result))}`))
        case "tool:error":
          return Console.log(dim(`↳ failed: ${clip(String(event.error))}`))
        case "display:message":
          return Console.log(dim(`[${String(event.level)}] ${String(event.message)}`))
        case "approval:required":
          return answerApproval(event)
        case "orchestrator:complete":
          return event.status === "completed" ? Effect.void : Console.log(dim(`(turn ${String(event.status)})`))
        case "stream:failure":
          // a cancelled turn was already reported by its `orchestrator:complete`
          return String(event.data).includes("TurnCancelled")
            ? Effect.void
            : Console.log(dim(`(the turn failed: ${clip(String(event.data), 500)})`))
        default:
          return Effect.void
      }
    }

    /** One turn: its events printed as they come, Ctrl-C cancels it (graceful, then immediate). */
    const turn = (text: string) =>
      Effect.gen(function*() {
        yield* Queue.clear(interrupts)
        const streaming = yield* client.events(`/sessions/${id}/execute`, { text }).pipe(
          Stream.runForEach(show),
          Effect.catch((error) => Console.log(error.message)),
          Effect.forkChild
        )
        let presses = 0
        const stopping = Effect.forever(
          Effect.gen(function*() {
            yield* Queue.take(interrupts)
            presses++
            const level = presses > 1 ? "immediate" : "graceful"
            yield* Console.log(
              dim(level === "graceful" ? "\n(stopping after this step; Ctrl-C again stops now)" : "\n(stopping now)")
            )
            yield* client.json("POST", `/sessions/${id}/cancel`, { level }).pipe(Effect.ignore)
          })
        )
        yield* Effect.raceFirst(Fiber.join(streaming), stopping)
      })

    while (true) {
      yield* Effect.sync(() => rl.setPrompt("> "))
      yield* Effect.sync(() => rl.prompt())
      const input = yield* Effect.raceFirst(
        Effect.map(Queue.take(lines), (line) => line),
        Effect.as(Queue.take(interrupts), { _tag: "End" } as const)
      )
      if (input._tag === "End") break
      if (input.text.trim().length === 0) continue
      yield* turn(input.text)
    }
    yield* Console.log(dim(`\nBye. Continue later with: esb chat --session ${id}`))
  }).pipe(Effect.scoped)

/** The `chat` command. */
export const command = Command.make("chat", flags, run).pipe(
  Command.withDescription("Chat with a session of a running server in the terminal")
)
