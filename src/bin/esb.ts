/**
 * The `esb` command line on Node (`npm start` runs `esb serve`). A stop asked
 * for with SIGINT/SIGTERM is a clean exit (code 0) once the shutdown is done;
 * a failure prints one line saying what to do and exits with code 1.
 */
import { NodeHttpClient, NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cause, Console, Effect, Exit, Runtime } from "effect"
import { CliError, Command } from "effect/cli"
import { esb } from "../cli/root.ts"

const teardown: Runtime.Teardown = (exit, onExit) =>
  Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause) ? onExit(0) : Runtime.defaultTeardown(exit, onExit)

/** What a person reads when a command fails (usage errors are already shown with the help). */
const report = (cause: Cause.Cause<unknown>) => {
  if (Cause.hasInterruptsOnly(cause)) return Effect.void
  const error = Cause.squash(cause)
  if (CliError.isCliError(error)) return Effect.void
  return Console.error(`esb: ${error instanceof Error ? error.message : String(error)}`)
}

Command.run(esb, { version: "0.1.0" }).pipe(
  Effect.tapCause(report),
  Effect.provide([NodeServices.layer, NodeHttpClient.layerNodeHttp]),
  NodeRuntime.runMain({ teardown, disableErrorReporting: true })
)
