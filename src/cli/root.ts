/**
 * The `esb` command line: `serve` (what `npm start` runs), and the client
 * commands that talk to a running server.
 */
import { Command } from "effect/cli"
import * as serve from "./serve.ts"

/** The root command and its subcommands. */
export const esb = Command.make("esb").pipe(
  Command.withDescription("effect-session-backend: long-running AI-agent chat sessions as a service"),
  Command.withSubcommands([serve.command])
)
