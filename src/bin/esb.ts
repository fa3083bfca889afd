/**
 * The `esb` command line on Node (`npm start` runs `esb serve`). A stop asked
 * for with SIGINT/SIGTERM is a clean exit (code 0) once the shutdown is done.
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cause, Effect, Exit, Runtime } from "effect"
import { Command } from "effect/cli"
import { esb } from "../cli/root.ts"

const teardown: Runtime.Teardown = (exit, onExit) =>
  Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause) ? onExit(0) : Runtime.defaultTeardown(exit, onExit)

Command.run(esb, { version: "0.1.0" }).pipe(
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain({ teardown })
)
