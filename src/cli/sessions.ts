/**
 * `sessions list|show|end`: what a running server holds, and what is on its disk.
 */
import { Console, Effect } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as Client from "./client.ts"
import { clientToken, dataDirFlag, urlFlag } from "./shared.ts"

const connection = { url: urlFlag, data: dataDirFlag }
const jsonFlag = Flag.Boolean("json").pipe(
  Flag.withDescription("print JSON instead of a table"),
  Flag.withDefault(false)
)

const clientOf = (options: { readonly url: string; readonly data: string }) =>
  Effect.flatMap(clientToken(options.data), (token) => Client.make(options.url, token))

interface Stored {
  readonly sessionId: string
  readonly workingDir?: string
  readonly bundle?: string
  readonly turnCount?: number
  readonly lastUpdated?: string
  readonly description?: string
  readonly ended: boolean
  readonly live: boolean
}

const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)))
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column])).join("  ").trimEnd()).join("\n")
}

const list = Command.make("list", {
  ...connection,
  all: Flag.Boolean("all").pipe(
    Flag.withDescription("every session on disk, not only the live ones"),
    Flag.withDefault(false)
  ),
  json: jsonFlag
}, (options) =>
  Effect.gen(function*() {
    const client = yield* clientOf(options)
    const stored = yield* client.json<ReadonlyArray<Stored>>("GET", "/stored-sessions")
    const shown = options.all ? stored : stored.filter((session) => session.live)
    if (options.json) return yield* Console.log(JSON.stringify(shown, null, 2))
    if (shown.length === 0) {
      return yield* Console.log(options.all ? "No sessions on disk." : "No live sessions (--all lists every one).")
    }
    yield* Console.log(table([
      ["ID", "WORKING DIR", "BUNDLE", "TURNS", "LAST UPDATED", "STATE"],
      ...shown.map((s) => [
        s.sessionId,
        s.workingDir ?? "",
        s.bundle ?? "",
        String(s.turnCount ?? 0),
        s.lastUpdated ?? "",
        s.ended ? "ended" : s.live ? "live" : "stored"
      ])
    ]))
  })).pipe(Command.withDescription("List the live sessions, or with --all every session on disk"))

const sessionId = Argument.String("session-id").pipe(Argument.withDescription("the session's id"))

const contentText = (content: unknown): string =>
  typeof content === "string"
    ? content
    : Array.isArray(content)
    ? content.map((block: { text?: unknown }) => typeof block.text === "string" ? block.text : "").join("")
    : ""

const show = Command.make("show", { ...connection, sessionId, json: jsonFlag }, (options) =>
  Effect.gen(function*() {
    const client = yield* clientOf(options)
    const stored = yield* client.json<ReadonlyArray<Stored>>("GET", "/stored-sessions")
    const info = stored.find((session) => session.sessionId === options.sessionId)
    const { messages } = yield* client.json<{
      messages: ReadonlyArray<
        { role: string; content: unknown; name?: string; tool_calls?: ReadonlyArray<Record<string, unknown>> }
      >
    }>("GET", `/sessions/${encodeURIComponent(options.sessionId)}/transcript`)
    if (options.json) return yield* Console.log(JSON.stringify({ session: info, messages }, null, 2))
    yield* Console.log(
      `Session ${options.sessionId}${info?.workingDir !== undefined ? ` in ${info.workingDir}` : ""}` +
        `${info?.bundle !== undefined ? `, bundle ${info.bundle}` : ""}` +
        `${info === undefined ? "" : info.ended ? " (ended)" : info.live ? " (live)" : ""}\n`
    )
    for (const message of messages) {
      const text = contentText(message.content)
      if (message.role === "tool") {
        yield* Console.log(`  ↳ ${message.name ?? "tool"}: ${text.length > 300 ? `${text.slice(0, 300)}…` : text}`)
        continue
      }
      if (text.length > 0) yield* Console.log(`${message.role === "user" ? "you" : message.role}: ${text}`)
      for (const call of message.tool_calls ?? []) {
        yield* Console.log(`  ⚙ ${String(call.tool ?? "tool")} ${JSON.stringify(call.arguments ?? {})}`)
      }
    }
  })).pipe(Command.withDescription("Show a session and its conversation"))

const end = Command.make("end", { ...connection, sessionId }, (options) =>
  Effect.gen(function*() {
    const client = yield* clientOf(options)
    yield* client.json("DELETE", `/sessions/${encodeURIComponent(options.sessionId)}`)
    yield* Console.log(`Ended ${options.sessionId}: it will not come back.`)
  })).pipe(Command.withDescription("End a session for good"))

/** The `sessions` command. */
export const command = Command.make("sessions").pipe(
  Command.withDescription("List, show and end sessions of a running server"),
  Command.withSubcommands([list, show, end])
)
