/**
 * The `esb` command line on Node (`npm start` runs `esb serve`).
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Effect } from "effect"
import { Command } from "effect/cli"
import { esb } from "../cli/root.ts"

Command.run(esb, { version: "0.1.0" }).pipe(
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain
)
