/**
 * The server's access token: where it comes from, and how a presented one is
 * checked without leaking its length or content through timing.
 */
import { Config, Effect, FileSystem, Option, Path, Redacted } from "effect"
import * as crypto from "node:crypto"

/** The environment variable that sets the token. */
export const envVar = "ESB_TOKEN"

/** Name of the token file inside the data directory. */
export const fileName = "token"

/** A fresh token: 32 random bytes, base64url. */
export const generate: Effect.Effect<string> = Effect.sync(() => crypto.randomBytes(32).toString("base64url"))

/**
 * The token from `ESB_TOKEN` or, when that is unset or empty, from
 * `<dataDir>/token`, generated there (mode 0600, in a folder made 0700) on the
 * first start and reused afterwards.
 */
export const resolve = Effect.fnUntraced(function*(dataDir: string) {
  const fromEnv = yield* Config.option(Config.Redacted(envVar))
  if (Option.isSome(fromEnv) && Redacted.value(fromEnv.value).length > 0) return fromEnv.value
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const file = path.join(dataDir, fileName)
  yield* fs.makeDirectory(dataDir, { recursive: true, mode: 0o700 })
  const stored = yield* readToken(fs, file)
  if (stored !== undefined) return Redacted.make(stored)
  const token = yield* generate
  // "wx": if another process wrote the file first, its token wins
  const written = yield* fs.writeFileString(file, `${token}\n`, { flag: "wx", mode: 0o600 }).pipe(
    Effect.as(true),
    Effect.catchReason("PlatformError", "AlreadyExists", () => Effect.succeed(false))
  )
  if (written) return Redacted.make(token)
  const winner = yield* readToken(fs, file)
  return Redacted.make(winner ?? token)
})

const readToken = (fs: FileSystem.FileSystem, file: string) =>
  fs.readFileString(file).pipe(
    Effect.map((text): string | undefined => text.trim() || undefined),
    Effect.catchReason("PlatformError", "NotFound", () => Effect.succeed(undefined))
  )

const digest = (value: string): Buffer => crypto.createHash("sha256").update(value, "utf8").digest()

/** Whether `presented` is the token, compared in constant time (over equal-length digests). */
export const matches = (token: Redacted.Redacted<string>, presented: Redacted.Redacted<string>): boolean => {
  const candidate = Redacted.value(presented)
  return candidate.length > 0 && crypto.timingSafeEqual(digest(Redacted.value(token)), digest(candidate))
}
