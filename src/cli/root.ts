/**
 * The `esb` command line: `serve` (what `npm start` runs), and the client
 * commands that talk to a running server.
 */
import { Command } from "effect/cli"
import * as chat from "./chat.ts"
import * as doctor from "./doctor.ts"
import * as serve from "./serve.ts"
import * as sessions from "./sessions.ts"

/** The root command and its subcommands. */
export const esb = Command.make("esb").pipe(
  Command.withDescription("effect-session-backend: long-running AI-agent chat sessions as a service"),
  Command.withSubcommands([serve.command, chat.command, sessions.command, doctor.command])
)
