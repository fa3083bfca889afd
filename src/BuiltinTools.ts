/**
 * The tools every agent session can be given: read, list and write files and
 * run shell commands, all confined to the session's working directory. They
 * are `effect/ai` tools in one `Toolkit`; `handlers(workingDir)` binds them to
 * one session. Failures (a missing file, a refused path) are returned to the
 * model as `{ message }` results instead of failing the turn. Writing and
 * running commands declare `needsApproval`, so the orchestrator asks a person
 * first.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Fiber, FileSystem, Path, PlatformError, Result, Schema, Stream } from "effect"
import type { Context } from "effect"
import { Tool, Toolkit } from "effect/ai"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import { confine, describePlatformError } from "./internal/confinedPath.ts"
import type { Refusal } from "./internal/confinedPath.ts"
import { makeOutputCapture, readLineWindow } from "./internal/textWindow.ts"

/** What a built-in tool returns to the model when it could not do its job. */
export const ToolFailure = Schema.Struct({ message: Schema.String })
/** What a built-in tool returns to the model when it could not do its job. */
export type ToolFailure = typeof ToolFailure.Type

/** The most text `read_file` returns from one call. */
export const readLimitBytes = 256 * 1024
/** The most output `run_command` keeps of stdout and of stderr each. */
export const outputLimitBytes = 64 * 1024
/** The time `run_command` allows when the call gives none, in seconds. */
export const defaultTimeoutSeconds = 120
/** The longest time `run_command` accepts, in seconds. */
export const maxTimeoutSeconds = 600

const PathParameter = Schema.String.annotate({
  description: "A path relative to the working directory (absolute paths must lie inside it)."
})

/** `read_file`: the text of a file, or some of its lines. */
export const ReadFile = Tool.make("read_file", {
  description: "Read a text file in the working directory and return its contents. For a large file, read part " +
    "of it with `offset` (the 1-based line to start at) and `limit` (how many lines). At most 256 KiB is " +
    "returned per call; a note at the end says where to continue when the text was cut.",
  parameters: Schema.Struct({
    path: PathParameter,
    offset: Schema.optionalKey(
      Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)).annotate({ description: "First line to read (1-based)." })
    ),
    limit: Schema.optionalKey(
      Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)).annotate({ description: "Number of lines to read." })
    )
  }),
  success: Schema.String,
  failure: ToolFailure,
  failureMode: "return"
}).annotate(Tool.Readonly, true)

/** The kind of a directory entry, as `list_directory` reports it. */
export const EntryType = Schema.Literals(["file", "directory", "symlink", "other"])

/** One entry of a directory listing; a symbolic link is reported as itself, not its target. */
export const DirectoryEntry = Schema.Struct({
  name: Schema.String,
  type: EntryType,
  size: Schema.Number
})
/** One entry of a directory listing. */
export type DirectoryEntry = typeof DirectoryEntry.Type

/** `list_directory`: the entries of a directory, sorted by name. */
export const ListDirectory = Tool.make("list_directory", {
  description: "List the entries of a directory in the working directory (default: the working directory itself), " +
    "sorted by name, each with its type (file, directory, symlink or other) and size in bytes.",
  parameters: Schema.Struct({
    path: Schema.optionalKey(PathParameter.annotate({ description: "The directory to list; default \".\"." }))
  }),
  success: Schema.Array(DirectoryEntry),
  failure: ToolFailure,
  failureMode: "return"
}).annotate(Tool.Readonly, true)

/** `write_file`: creates or replaces a file (and its parent folders); asks for approval. */
export const WriteFile = Tool.make("write_file", {
  description: "Create or overwrite a file in the working directory with the given text, creating missing parent " +
    "directories. Returns the path written and the number of bytes. The user is asked to approve each write.",
  parameters: Schema.Struct({
    path: PathParameter,
    content: Schema.String.annotate({ description: "The complete new contents of the file." })
  }),
  success: Schema.Struct({ path: Schema.String, bytes: Schema.Int }),
  failure: ToolFailure,
  failureMode: "return",
  needsApproval: true
}).annotate(Tool.Destructive, true)

/** The outcome of a command; `exitCode` is null when the process was ended by a signal or the time-out. */
export const CommandResult = Schema.Struct({
  exitCode: Schema.NullOr(Schema.Int),
  stdout: Schema.String,
  stderr: Schema.String,
  timedOut: Schema.Boolean
})
/** The outcome of a command. */
export type CommandResult = typeof CommandResult.Type

/** `run_command`: `/bin/sh -c command` in the working directory; asks for approval. */
export const RunCommand = Tool.make("run_command", {
  description: "Run a shell command with /bin/sh -c in the working directory and return its exit code, stdout " +
    "and stderr (each cut at 64 KiB). Standard input is empty. The command is killed, with every process it " +
    "started, after `timeout_seconds` (default 120, at most 600); `timedOut` then is true. The user is asked " +
    "to approve each command.",
  parameters: Schema.Struct({
    command: Schema.String.annotate({ description: "The shell command line." }),
    timeout_seconds: Schema.optionalKey(
      Schema.Finite.check(Schema.isBetween({ minimum: 1, maximum: maxTimeoutSeconds })).annotate({
        description: "Seconds before the command is killed (default 120, at most 600)."
      })
    )
  }),
  success: CommandResult,
  failure: ToolFailure,
  failureMode: "return",
  needsApproval: true
}).annotate(Tool.Destructive, true)

/** All four built-in tools. */
export const toolkit = Toolkit.make(ReadFile, ListDirectory, WriteFile, RunCommand)

/** The tools that only look: `read_file` and `list_directory`. */
export const readOnlyToolkit = Toolkit.make(ReadFile, ListDirectory)

/** The names of the built-in tools. */
export type BuiltinToolName = keyof typeof toolkit.tools

/** The handlers of the built-in tools, ready to provide to `toolkit` (or to `readOnlyToolkit`). */
export type Handlers = Context.Context<Tool.HandlersFor<Toolkit.Tools<typeof toolkit>>>

/**
 * The origin's tool module ids and the built-in tools each one stands for, so
 * bundles written for the origin enable these tools.
 */
export const moduleTools: Readonly<Record<string, ReadonlyArray<BuiltinToolName> | undefined>> = {
  "tool-filesystem": ["read_file", "list_directory", "write_file"],
  /** Ours: reading without writing, for read-only agents. */
  "tool-filesystem-read": ["read_file", "list_directory"],
  "tool-bash": ["run_command"]
}

const entryType = (type: FileSystem.File.Type): DirectoryEntry["type"] =>
  type === "File" ? "file" : type === "Directory" ? "directory" : type === "SymbolicLink" ? "symlink" : "other"

const byteLength = (text: string): number => new TextEncoder().encode(text).length

/** Turns a file system failure into the message the model reads. */
const failWith = (shown: string) => (error: PlatformError.PlatformError | Refusal): ToolFailure =>
  PlatformError.isPlatformError(error) ? { message: describePlatformError(shown, error) } : { message: error.message }

/**
 * The handlers of the built-in tools for a session whose working directory is
 * `workingDir`; provide them to `toolkit` to get a `Toolkit.WithHandler`.
 */
export const handlers = (
  workingDir: string
): Effect.Effect<Handlers, never, FileSystem.FileSystem | Path.Path | ChildProcessSpawner.ChildProcessSpawner> =>
  toolkit.toHandlers(Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
    const inside = (requested: string) => confine(fs, path, workingDir, requested)

    const readFile = Effect.fn("BuiltinTools.read_file")(
      function*(params: Tool.Parameters<typeof ReadFile>) {
        const target = yield* inside(params.path)
        const info = yield* fs.stat(target.real)
        if (info.type === "Directory") {
          return yield* Effect.fail({ message: `${params.path} is a directory; use list_directory to see it` })
        }
        const offset = params.offset ?? 1
        const window = yield* readLineWindow(Stream.decodeText(fs.stream(target.real)), {
          offset,
          limit: params.limit ?? Number.POSITIVE_INFINITY,
          maxBytes: readLimitBytes
        })
        if (window.binary) {
          return yield* Effect.fail({ message: `${params.path} is a binary file (${info.size} bytes), not text` })
        }
        if (window.truncatedAtLine !== undefined) {
          return `${window.text}\n[truncated: this reply stops at 256 KiB, in line ${window.truncatedAtLine} of a ` +
            `${info.size}-byte file; call read_file with offset=${window.truncatedAtLine} to read on]`
        }
        if (window.text === "" && offset > 1) return `[offset ${offset} is past the end of ${params.path}]`
        return window.text
      },
      (effect, params) => Effect.mapError(effect, failWith(params.path))
    )

    const listDirectory = Effect.fn("BuiltinTools.list_directory")(
      function*(params: Tool.Parameters<typeof ListDirectory>) {
        const target = yield* inside(params.path ?? ".")
        const names = yield* fs.readDirectory(target.real)
        const entries = yield* Effect.forEach(names, (name) =>
          fs.lstat(path.join(target.real, name)).pipe(
            Effect.map((info): DirectoryEntry => ({ name, type: entryType(info.type), size: Number(info.size) })),
            // an entry removed while listing is left out
            Effect.option
          ), { concurrency: 16 })
        return entries
          .flatMap((entry) => entry._tag === "Some" ? [entry.value] : [])
          .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      },
      (effect, params) => Effect.mapError(effect, failWith(params.path ?? "."))
    )

    const writeFile = Effect.fn("BuiltinTools.write_file")(
      function*(params: Tool.Parameters<typeof WriteFile>) {
        const target = yield* inside(params.path)
        if (target.relative !== ".") yield* fs.makeDirectory(path.dirname(target.real), { recursive: true })
        yield* fs.writeFileString(target.real, params.content)
        return { path: target.relative, bytes: byteLength(params.content) }
      },
      (effect, params) => Effect.mapError(effect, failWith(params.path))
    )

    const runCommand = Effect.fn("BuiltinTools.run_command")(
      function*(params: Tool.Parameters<typeof RunCommand>) {
        const cwd = yield* inside(".")
        const stdout = makeOutputCapture(outputLimitBytes, "stdout")
        const stderr = makeOutputCapture(outputLimitBytes, "stderr")
        const drain = (stream: Stream.Stream<Uint8Array, PlatformError.PlatformError>, into: typeof stdout) =>
          Stream.runForEach(stream, (chunk) => Effect.sync(() => into.push(chunk)))
        // the scope owns the process: closing it (at the end, on time-out or on interruption) kills its group
        const run = Effect.scoped(Effect.gen(function*() {
          const handle = yield* spawner.spawn(ChildProcess.make("/bin/sh", ["-c", params.command], {
            cwd: cwd.real,
            stdin: "ignore",
            killSignal: "SIGTERM",
            forceKillAfter: "2 seconds"
          }))
          const output = yield* Effect.forkChild(
            Effect.all([drain(handle.stdout, stdout), drain(handle.stderr, stderr)], { concurrency: 2 })
          )
          const exit = yield* Effect.result(handle.exitCode)
          // output may stay open in a process left running in the background: give it a moment, then kill it
          yield* Effect.ignore(Effect.timeoutOption(Fiber.join(output), "1 second"))
          return Result.isSuccess(exit) ? Number(exit.success) : null
        }))
        const outcome = yield* Effect.timeoutOption(
          run,
          Duration.seconds(params.timeout_seconds ?? defaultTimeoutSeconds)
        )
        const timedOut = outcome._tag === "None"
        const errors = stderr.text()
        const note = `[killed after ${params.timeout_seconds ?? defaultTimeoutSeconds} seconds]`
        return {
          exitCode: timedOut ? null : outcome.value,
          stdout: stdout.text(),
          stderr: timedOut ? (errors === "" ? note : `${errors}\n${note}`) : errors,
          timedOut
        }
      },
      (effect) => Effect.mapError(effect, failWith("run_command"))
    )

    return toolkit.of({
      read_file: readFile,
      list_directory: listDirectory,
      write_file: writeFile,
      run_command: runCommand
    })
  }))

const oneLine = (text: string, max = 200): string => {
  const flat = text.replace(/\s*\n\s*/g, " ⏎ ")
  return flat.length > max ? `${flat.slice(0, max)}…` : flat
}

const field = (params: unknown, key: string): unknown =>
  typeof params === "object" && params !== null ? (params as Record<string, unknown>)[key] : undefined

const text = (params: unknown, key: string): string | undefined => {
  const value = field(params, key)
  return typeof value === "string" ? value : undefined
}

const positive = (params: unknown, key: string): number | undefined => {
  const value = field(params, key)
  return typeof value === "number" && value > 0 ? value : undefined
}

/**
 * A one-line description of a built-in tool call, used as the approval
 * prompt: "Write 120 bytes to notes/todo.md", "Run `npm test` in
 * /home/u/project" (with `workingDir`; otherwise "in the working directory").
 */
export const describeCall = (name: string, params: unknown, workingDir?: string): string => {
  const where = workingDir ?? "the working directory"
  switch (name) {
    case "read_file": {
      const offset = positive(params, "offset")
      const limit = positive(params, "limit")
      const lines = offset === undefined && limit === undefined
        ? ""
        : limit === undefined
        ? ` from line ${offset}`
        : ` lines ${offset ?? 1}–${(offset ?? 1) + limit - 1}`
      return `Read ${oneLine(text(params, "path") ?? "?")}${lines}`
    }
    case "list_directory": {
      const dir = text(params, "path") ?? "."
      return dir === "." ? `List ${where}` : `List the directory ${oneLine(dir)}`
    }
    case "write_file": {
      const content = text(params, "content")
      const size = content === undefined ? "a file" : `${byteLength(content)} bytes`
      return `Write ${size} to ${oneLine(text(params, "path") ?? "?")}`
    }
    case "run_command": {
      const timeout = positive(params, "timeout_seconds")
      return `Run \`${oneLine(text(params, "command") ?? "")}\` in ${where}` +
        (timeout === undefined ? "" : ` (time limit ${timeout} s)`)
    }
    default: {
      let shown: string
      try {
        shown = JSON.stringify(params) ?? ""
      } catch {
        shown = String(params)
      }
      return `Call ${name}(${oneLine(shown)})`
    }
  }
}
