/**
 * `doctor`: checks what the server needs on this machine (Node, the data
 * folder, the process cwd, the bundle, the provider settings, a running
 * server) and says what to fix. Exits with an error when a check fails.
 */
import { NodeServices } from "@effect/platform-node"
import { Console, Data, Effect, FileSystem, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { HttpClient } from "effect/http"
import * as fs from "node:fs"
import * as path from "node:path"
import * as BundleConfig from "../BundleConfig.ts"
import * as OpenAiCompatible from "../OpenAiCompatible.ts"
import { dataDirFlag, urlFlag } from "./shared.ts"

type Level = "ok" | "warn" | "fail"

interface Finding {
  readonly level: Level
  readonly check: string
  readonly detail: string
}

/** At least one check failed. */
export class DoctorFailed extends Data.TaggedError("DoctorFailed")<{ readonly failed: number }> {
  override get message() {
    return `${this.failed} check${this.failed === 1 ? "" : "s"} failed`
  }
}

const finding = (level: Level, check: string, detail: string): Finding => ({ level, check, detail })

const nodeVersion = Effect.sync(() => {
  const [major, minor] = process.versions.node.split(".").map(Number)
  if (major < 20 || (major === 20 && minor < 19)) {
    return finding("fail", "node", `Node ${process.versions.node}: install Node 20.19 or newer`)
  }
  return major < 22
    ? finding("warn", "node", `Node ${process.versions.node} works; vitest 5 and @effect/platform-node ask for 22+`)
    : finding("ok", "node", `Node ${process.versions.node}`)
})

const dataFolder = (dataDir: string) =>
  Effect.gen(function*() {
    const files = yield* FileSystem.FileSystem
    const exists = yield* files.exists(dataDir).pipe(Effect.orElseSucceed(() => false))
    if (!exists) {
      const parent = path.dirname(dataDir)
      const writable = yield* Effect.sync(() => {
        try {
          fs.accessSync(parent, fs.constants.W_OK)
          return true
        } catch {
          return false
        }
      })
      return writable
        ? [finding("ok", "data folder", `${dataDir} does not exist yet; the server creates it`)]
        : [finding("fail", "data folder", `${dataDir} cannot be created: ${parent} is not writable (pass --data)`)]
    }
    const found: Array<Finding> = []
    const probe = path.join(dataDir, `.doctor-${process.pid}`)
    const writable = yield* files.writeFileString(probe, "").pipe(
      Effect.andThen(files.remove(probe)),
      Effect.as(true),
      Effect.orElseSucceed(() => false)
    )
    found.push(
      writable
        ? finding("ok", "data folder", `${dataDir} is writable`)
        : finding("fail", "data folder", `${dataDir} is not writable by this user`)
    )
    const token = path.join(dataDir, "token")
    if (yield* files.exists(token).pipe(Effect.orElseSucceed(() => false))) {
      const mode = (yield* files.stat(token).pipe(Effect.orDie)).mode & 0o777
      found.push(
        mode === 0o600
          ? finding("ok", "access token", `${token} (0600)`)
          : finding("fail", "access token", `${token} has mode ${mode.toString(8)}: run chmod 600 ${token}`)
      )
    }
    return found
  })

const workingDirectory = Effect.sync(() => {
  try {
    const cwd = process.cwd()
    return fs.existsSync(cwd)
      ? finding("ok", "cwd", cwd)
      : finding("warn", "cwd", `${cwd} no longer exists; the server moves to the home directory before loading bundles`)
  } catch {
    return finding("warn", "cwd", "the current directory is gone; the server moves to the home directory")
  }
})

const bundle = (target: Option.Option<string>) =>
  Option.match(target, {
    onNone: () => Effect.succeed(finding("ok", "bundle", "the embedded default bundle")),
    onSome: (ref) =>
      BundleConfig.load(ref).pipe(
        Effect.map((config) =>
          finding("ok", "bundle", `${config.name} ${config.version} from ${config.path} (${config.files.length} files)`)
        ),
        Effect.catch((error) =>
          Effect.succeed(
            finding(
              "fail",
              "bundle",
              `${error.message}${error.field !== undefined ? ` — fix ${error.field} in ${error.path ?? ref}` : ""}`
            )
          )
        )
      )
  })

const provider = Effect.suspend(() => OpenAiCompatible.configOption()).pipe(
  Effect.map((configured) =>
    Option.match(configured, {
      onNone: () =>
        finding(
          "ok",
          "provider",
          "none configured: bundles without a provider use the offline model (set OPENAI_MODEL, OPENAI_BASE_URL and OPENAI_API_KEY for a real one)"
        ),
      onSome: (options) =>
        finding(
          "ok",
          "provider",
          `${options.model} at ${options.baseUrl}, ${options.apiKey !== undefined ? "with a key" : "without a key"}`
        )
    })
  ),
  Effect.catch((error) => Effect.succeed(finding("fail", "provider", `incomplete settings: ${error.message}`)))
)

const server = (url: string) =>
  Effect.flatMap(HttpClient.HttpClient, (http) =>
    http.get(`${url}/api/health`).pipe(
      Effect.flatMap((response) => response.json),
      Effect.map((body) =>
        finding("ok", "server", `${url} answers (${(body as { sessions?: number }).sessions ?? 0} live sessions)`)
      ),
      Effect.timeout("3 seconds"),
      Effect.orElseSucceed(() => finding("warn", "server", `nothing answers at ${url}; start it with npm start`))
    ))

/** The `doctor` command. */
export const command = Command.make("doctor", {
  url: urlFlag,
  data: dataDirFlag,
  bundle: Flag.String("bundle").pipe(Flag.withDescription("a bundle file or folder to check"), Flag.optional)
}, (options) =>
  Effect.gen(function*() {
    const findings = [
      yield* nodeVersion,
      ...(yield* dataFolder(options.data)),
      yield* workingDirectory,
      yield* bundle(options.bundle),
      yield* provider,
      yield* server(options.url)
    ]
    for (const { check, detail, level } of findings) {
      yield* Console.log(`${level.padEnd(4)}  ${check.padEnd(12)}  ${detail}`)
    }
    const failed = findings.filter((f) => f.level === "fail").length
    if (failed > 0) return yield* new DoctorFailed({ failed })
    yield* Console.log("\nAll checks passed.")
  }).pipe(Effect.provide(NodeServices.layer))).pipe(
    Command.withDescription("Check the data folder, the cwd, a bundle, the provider settings and the server")
  )
