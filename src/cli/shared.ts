/**
 * What the commands share: the data folder, and how a client command finds
 * the server and its access token.
 */
import { Config, Effect, FileSystem, Option, Redacted } from "effect"
import { Flag } from "effect/cli"
import * as os from "node:os"
import * as path from "node:path"

/** The default data folder: `$ESB_DATA`, else `~/.effect-session-backend`. */
export const defaultDataDir = (): string => process.env.ESB_DATA ?? path.join(os.homedir(), ".effect-session-backend")

/** `--data`: where transcripts and the access token live. */
export const dataDirFlag = Flag.String("data").pipe(
  Flag.withDescription(
    "the data folder: transcripts and the access token (default $ESB_DATA or ~/.effect-session-backend)"
  ),
  Flag.withDefault(defaultDataDir()),
  Flag.map((dir) => path.resolve(dir))
)

/** `--url`: where a running server listens. */
export const urlFlag = Flag.String("url").pipe(
  Flag.withDescription("the server's base URL (default $ESB_URL or http://127.0.0.1:4480)"),
  Flag.withDefault(process.env.ESB_URL ?? "http://127.0.0.1:4480"),
  Flag.map((url) => url.replace(/\/+$/, ""))
)

/** The access token a client uses: `ESB_TOKEN`, else the token file of the data folder. */
export const clientToken = (dataDir: string) =>
  Effect.gen(function*() {
    const fromEnv = yield* Config.option(Config.Redacted("ESB_TOKEN"))
    if (Option.isSome(fromEnv)) return fromEnv.value
    const fs = yield* FileSystem.FileSystem
    const file = path.join(dataDir, "token")
    const text = yield* fs.readFileString(file).pipe(
      Effect.mapError(() =>
        new Error(`no access token: set ESB_TOKEN, or start the server once so that it writes ${file}`)
      )
    )
    return Redacted.make(text.trim())
  })
