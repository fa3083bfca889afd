/**
 * Where sessions live on disk, in the origin's layout so its transcripts load
 * as they are: `<home>/projects/<project_id>/sessions/<session_id>/` holds
 * `transcript.jsonl` (one message a line) and `metadata.json`.
 *
 * A turn appends its new lines and syncs them, so its cost does not grow with
 * the conversation; a crash mid-append leaves at most a torn last line, which
 * `load` drops and reports. Whole rewrites (after a repair) and metadata are
 * written atomically: a temp file in the same folder, synced, renamed over.
 *
 * @since 0.1.0
 */
import { NodeFileSystem, NodePath } from "@effect/platform-node"
import { Clock, Context, Effect, FileSystem, Layer, Option, Path } from "effect"
import * as os from "node:os"
import * as path from "node:path"
import type { InvalidSessionId } from "./SessionError.ts"
import { TranscriptCorrupt, TranscriptNotFound, TranscriptStoreError } from "./SessionError.ts"
import * as SessionId from "./SessionId.ts"
import { projectIdOf } from "./SessionInfo.ts"
import * as Transcript from "./Transcript.ts"

/** The folder of one session. */
export interface Location {
  readonly sessionId: SessionId.SessionId
  readonly projectId: string
  readonly directory: string
  readonly transcriptPath: string
  readonly metadataPath: string
}

/** `metadata.json`: the origin's keys, and whatever else it holds (kept on every merge). */
export type Metadata = { readonly [key: string]: unknown }

/** What `load` reads. */
export interface Loaded {
  readonly messages: ReadonlyArray<Transcript.Message>
  /** The last line was cut short by a crash and was dropped. */
  readonly tornLastLine: boolean
  readonly metadata: Metadata
}

/** The transcript store. */
export interface Service {
  readonly home: string
  /** The folder of a session working in `workingDir`; the id is validated before it becomes a path. */
  readonly locate: (sessionId: string, workingDir: string) => Effect.Effect<Location, InvalidSessionId>
  /** The folder of a session in any project (after a restart the working directory is not known). */
  readonly find: (
    sessionId: string
  ) => Effect.Effect<Location, TranscriptNotFound | InvalidSessionId | TranscriptStoreError>
  readonly load: (
    location: Location
  ) => Effect.Effect<Loaded, TranscriptNotFound | TranscriptCorrupt | TranscriptStoreError>
  /** Appends messages as lines and syncs them. */
  readonly append: (
    location: Location,
    messages: ReadonlyArray<Transcript.Message>
  ) => Effect.Effect<void, TranscriptStoreError>
  /** Rewrites the transcript atomically. */
  readonly save: (
    location: Location,
    messages: ReadonlyArray<Transcript.Message>
  ) => Effect.Effect<void, TranscriptStoreError>
  /** Merges `patch` into `metadata.json` (atomically), setting `last_updated` from the Clock. */
  readonly saveMetadata: (location: Location, patch: Metadata) => Effect.Effect<void, TranscriptStoreError>
  /**
   * Every stored session (live or not) with its metadata, most recently
   * updated first; for clients that offer to resume a past session.
   */
  readonly list: Effect.Effect<ReadonlyArray<StoredSession>, TranscriptStoreError>
}

/** A session on disk, as `list` finds it. */
export interface StoredSession {
  readonly location: Location
  readonly metadata: Metadata
}

/** The transcript store. */
export class TranscriptStore extends Context.Service<TranscriptStore, Service>()(
  "effect-session-backend/TranscriptStore"
) {}

/** The few file operations the store needs; the file and memory layers differ only here. */
interface Files {
  readonly read: (file: string) => Effect.Effect<Option.Option<string>, TranscriptStoreError>
  readonly exists: (file: string) => Effect.Effect<boolean, TranscriptStoreError>
  readonly append: (file: string, text: string) => Effect.Effect<void, TranscriptStoreError>
  readonly replace: (file: string, text: string) => Effect.Effect<void, TranscriptStoreError>
  readonly list: (directory: string) => Effect.Effect<ReadonlyArray<string>, TranscriptStoreError>
}

const make = (home: string, files: Files): Service => {
  const projects = path.join(home, "projects")
  const at = (sessionId: SessionId.SessionId, projectId: string): Location => {
    const directory = path.join(projects, projectId, "sessions", sessionId)
    return {
      sessionId,
      projectId,
      directory,
      transcriptPath: path.join(directory, "transcript.jsonl"),
      metadataPath: path.join(directory, "metadata.json")
    }
  }
  const readMetadata = (location: Location) =>
    Effect.flatMap(files.read(location.metadataPath), (text) =>
      Option.match(text, {
        onNone: () => Effect.succeed<Metadata>({}),
        onSome: (json) =>
          Effect.try({
            try: () => JSON.parse(json) as Metadata,
            catch: (cause) =>
              new TranscriptStoreError({ path: location.metadataPath, detail: "metadata.json is not JSON", cause })
          })
      }))
  return {
    home,
    locate: (sessionId, workingDir) => Effect.map(SessionId.decode(sessionId), (id) => at(id, projectIdOf(workingDir))),
    find: (sessionId) =>
      Effect.gen(function*() {
        const id = yield* SessionId.decode(sessionId)
        for (const projectId of yield* files.list(projects)) {
          // a project id never holds a separator, so the path stays under `projects`
          if (projectId.includes("/") || projectId === "..") continue
          const location = at(id, projectId)
          if (yield* files.exists(location.transcriptPath)) return location
        }
        return yield* new TranscriptNotFound({ sessionId: id })
      }),
    load: (location) =>
      Effect.gen(function*() {
        // both files at once: on a cold session this is most of the reconnect's fixed cost
        const [text, metadata] = yield* Effect.all([files.read(location.transcriptPath), readMetadata(location)], {
          concurrency: 2
        })
        if (Option.isNone(text)) return yield* new TranscriptNotFound({ sessionId: location.sessionId })
        const parsed = yield* Transcript.parseJsonl(text.value, location.sessionId)
        return { ...parsed, metadata }
      }),
    list: Effect.gen(function*() {
      const found: Array<StoredSession> = []
      for (const projectId of yield* files.list(projects)) {
        if (projectId.includes("/") || projectId === "..") continue
        for (const name of yield* files.list(path.join(projects, projectId, "sessions"))) {
          if (!SessionId.isSessionId(name)) continue
          const location = at(name, projectId)
          const metadata = yield* readMetadata(location).pipe(Effect.orElseSucceed((): Metadata => ({})))
          if (Object.keys(metadata).length > 0 || (yield* files.exists(location.transcriptPath))) {
            found.push({ location, metadata })
          }
        }
      }
      const updated = (session: StoredSession) =>
        typeof session.metadata.last_updated === "string" ? session.metadata.last_updated : ""
      return found.sort((a, b) => updated(b).localeCompare(updated(a)))
    }),
    append: (location, messages) =>
      messages.length === 0 ? Effect.void : files.append(location.transcriptPath, Transcript.toJsonl(messages)),
    save: (location, messages) => files.replace(location.transcriptPath, Transcript.toJsonl(messages)),
    saveMetadata: (location, patch) =>
      Effect.gen(function*() {
        const current = yield* readMetadata(location)
        const now = yield* Clock.currentTimeMillis
        const merged = { ...current, ...patch, last_updated: new Date(now).toISOString() }
        yield* files.replace(location.metadataPath, JSON.stringify(merged, null, 2) + "\n")
      })
  }
}

/** The home of the origin, `~/.amplifier`. */
export const defaultHome = (): string => path.join(os.homedir(), ".amplifier")

/** The store on Effect's `FileSystem`, under `home` (default `~/.amplifier`). */
export const layerFile = (
  options: { readonly home?: string | undefined } = {}
): Layer.Layer<TranscriptStore, never, FileSystem.FileSystem | Path.Path> =>
  Layer.effect(
    TranscriptStore,
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const failed = (file: string, detail: string) => (cause: unknown) =>
        new TranscriptStoreError({ path: file, detail, cause })
      const isNotFound = (error: { readonly reason: { readonly _tag: string } }) => error.reason._tag === "NotFound"
      const durable = (file: string, text: string, flag: "a" | "w") =>
        Effect.scoped(Effect.gen(function*() {
          yield* fs.makeDirectory(path.dirname(file), { recursive: true })
          const handle = yield* fs.open(file, { flag })
          yield* handle.writeAll(new TextEncoder().encode(text))
          yield* handle.sync
        }))
      const files: Files = {
        read: (file) =>
          fs.readFileString(file).pipe(
            Effect.map(Option.some),
            Effect.catchIf(isNotFound, () => Effect.succeedNone),
            Effect.mapError(failed(file, "cannot read"))
          ),
        exists: (file) => fs.exists(file).pipe(Effect.mapError(failed(file, "cannot look up"))),
        append: (file, text) => durable(file, text, "a").pipe(Effect.mapError(failed(file, "cannot append"))),
        replace: (file, text) => {
          const temp = `${file}.${globalThis.crypto.randomUUID()}.tmp`
          return durable(temp, text, "w").pipe(
            Effect.andThen(fs.rename(temp, file)),
            Effect.onError(() => Effect.ignore(fs.remove(temp))),
            Effect.mapError(failed(file, "cannot write"))
          )
        },
        list: (directory) =>
          fs.readDirectory(directory).pipe(
            Effect.catchIf(isNotFound, () => Effect.succeed([])),
            Effect.mapError(failed(directory, "cannot list"))
          )
      }
      return make(options.home ?? defaultHome(), files)
    })
  )

/** The file store with Node's file system. */
export const layerFileNode = (options: { readonly home?: string | undefined } = {}): Layer.Layer<TranscriptStore> =>
  layerFile(options).pipe(Layer.provide([NodeFileSystem.layer, NodePath.layer]))

/** The store in memory, same layout and behaviour, for tests. */
export const layerMemory = (home = "/memory"): Layer.Layer<TranscriptStore> =>
  Layer.sync(TranscriptStore, () => {
    // each file is the list of the texts written to it, so an append costs what it appends
    const contents = new Map<string, Array<string>>()
    const files: Files = {
      read: (file) =>
        Effect.sync(() => Option.map(Option.fromNullishOr(contents.get(file)), (parts) => parts.join(""))),
      exists: (file) => Effect.sync(() => contents.has(file)),
      append: (file, text) =>
        Effect.sync(() => {
          const parts = contents.get(file)
          if (parts === undefined) contents.set(file, [text])
          else parts.push(text)
        }),
      replace: (file, text) => Effect.sync(() => void contents.set(file, [text])),
      list: (directory) =>
        Effect.sync(() => {
          const names = new Set<string>()
          for (const file of contents.keys()) {
            if (file.startsWith(directory + "/")) names.add(file.slice(directory.length + 1).split("/")[0])
          }
          return Array.from(names)
        })
    }
    return make(home, files)
  })
