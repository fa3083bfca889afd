/**
 * The session backend: live sessions as actors (a bounded mailbox and one
 * worker fiber each), cancel by interruption, bounded end and stop, replayable
 * event streams and approvals.
 *
 * @since 0.1.0
 */
import { Clock, Context, Deferred, Duration, Effect, Layer, Option, Schedule, Stream } from "effect"
import * as os from "node:os"
import * as path from "node:path"
import * as BundleLoader from "./BundleLoader.ts"
import * as CwdGuard from "./CwdGuard.ts"
import { makeActivation } from "./internal/activation.ts"
import { recording } from "./internal/recordingBackend.ts"
import type { RecordedCall } from "./internal/recordingBackend.ts"
import type { SessionActor } from "./internal/sessionActor.ts"
import type { ActorConfig } from "./internal/sessionActor.ts"
import type {
  BundleLoadError,
  CancelLevel,
  EventsUnavailable,
  SendError,
  TranscriptStoreError
} from "./SessionError.ts"
import { InvalidSessionId, InvalidWorkingDir, ReconnectError, SessionEnded, SessionNotFound } from "./SessionError.ts"
import * as SessionEvent from "./SessionEvent.ts"
import * as SessionId from "./SessionId.ts"
import { projectIdOf, SessionInfo } from "./SessionInfo.ts"
import * as TranscriptStore from "./TranscriptStore.ts"

/** What `createSession` accepts. */
export interface CreateOptions {
  /** Default `~`, the backend's home directory. Must be absolute after `~` is expanded. */
  readonly workingDir?: string | undefined
  /** A bundle reference for the `BundleLoader`; default its default bundle. */
  readonly bundle?: string | undefined
  readonly description?: string | undefined
  /** The application creating the session (`"web"`, `"slack"` …). */
  readonly app?: string | undefined
}

/** What `resumeSession` accepts. */
export interface ResumeOptions {
  readonly workingDir?: string | undefined
}

/** What `events` accepts. */
export interface EventsOptions {
  /** The last sequence number the subscriber saw: replay everything after it. Default: only new events. */
  readonly after?: number | undefined
}

/** The backend's service. */
export interface Service {
  readonly createSession: (
    options?: CreateOptions
  ) => Effect.Effect<SessionInfo, BundleLoadError | InvalidWorkingDir | TranscriptStoreError>
  /** Queues `text` behind earlier messages of the session and waits for the reply. */
  readonly sendMessage: (id: string, text: string) => Effect.Effect<string, SendError>
  /** Like `sendMessage`, streaming that turn's events; ends with the turn, fails as `sendMessage` would. */
  readonly execute: (
    id: string,
    prompt: string
  ) => Stream.Stream<SessionEvent.SessionEvent, SendError | EventsUnavailable>
  /** Every event of the session from now on, or after `options.after`; ends with `session:end`. */
  readonly events: (
    id: string,
    options?: EventsOptions
  ) => Stream.Stream<SessionEvent.SessionEvent, SessionNotFound | InvalidSessionId | EventsUnavailable | ReconnectError>
  /** Graceful (default) stops at the next step boundary; immediate interrupts the turn now. Idle or unknown: no-op. */
  readonly cancelSession: (id: string, level?: CancelLevel) => Effect.Effect<void>
  /** Brings a session back from its transcript (or returns the live one); `options.workingDir` overrides the recorded one. */
  readonly resumeSession: (id: string, options?: ResumeOptions) => Effect.Effect<SessionInfo, ReconnectError>
  /** Tombstones the session, drains its turn for up to `endDrainTimeout`, then interrupts it and cleans up. */
  readonly endSession: (id: string) => Effect.Effect<void>
  /** Answers a pending approval of that session; true only if it was pending. */
  readonly resolveApproval: (id: string, requestId: string, choice: string) => Effect.Effect<boolean>
  /** The approval requests of a live session that wait for an answer. */
  readonly pendingApprovals: (id: string) => Effect.Effect<ReadonlyArray<SessionEvent.ApprovalRequired>>
  readonly getSessionInfo: (id: string) => Effect.Effect<Option.Option<SessionInfo>>
  readonly listActiveSessions: Effect.Effect<ReadonlyArray<SessionInfo>>
  /** Ends every live session (drain for up to `stopTimeout`, then interrupt); also the layer's finalizer. */
  readonly stop: Effect.Effect<void>
}

/** The session backend. */
export class SessionBackend extends Context.Service<SessionBackend, Service>()(
  "effect-session-backend/SessionBackend"
) {}

/** Tunables of the backend; every one has a default. */
export interface Options {
  /** Messages a session's mailbox holds beside the running turn; default 256. */
  readonly mailboxCapacity?: number | undefined
  /** Events of each session kept for replay; default 1024. */
  readonly replayWindow?: number | undefined
  /** How long an approval waits before its default applies; default 5 minutes. */
  readonly approvalTimeout?: Duration.Input | undefined
  /** How long `endSession` lets a running turn finish; default 5 seconds. */
  readonly endDrainTimeout?: Duration.Input | undefined
  /** How long `stop` lets running turns finish; default 10 seconds. */
  readonly stopTimeout?: Duration.Input | undefined
  /** What `~` in a working directory means; default the user's home directory. */
  readonly homeDirectory?: string | undefined
  /** How long a session may sit idle before it is released from memory; default 30 minutes. */
  readonly idleTimeout?: Duration.Input | undefined
}

/** Builds a backend whose sessions live in the current scope; closing it stops them. */
export const make = Effect.fnUntraced(function*(options: Options = {}) {
  const loader = yield* BundleLoader.BundleLoader
  const store = yield* TranscriptStore.TranscriptStore
  const guard = yield* CwdGuard.CwdGuard
  const backendScope = yield* Effect.scope
  const config: ActorConfig = {
    context: yield* Effect.context<never>(),
    clock: yield* Clock.Clock,
    mailboxCapacity: positive("mailboxCapacity", options.mailboxCapacity ?? 256),
    approvalTimeout: Duration.fromInputUnsafe(options.approvalTimeout ?? Duration.minutes(5))
  }
  const replayWindow = positive("replayWindow", options.replayWindow ?? 1024)
  const endDrain = Duration.fromInputUnsafe(options.endDrainTimeout ?? Duration.seconds(5))
  const stopDrain = Duration.fromInputUnsafe(options.stopTimeout ?? Duration.seconds(10))
  const home = options.homeDirectory ?? os.homedir()
  const actors = new Map<SessionId.SessionId, SessionActor>()
  const tombstones = new Set<string>()
  let stopping = false

  const resolveWorkingDir = (input: string): Effect.Effect<string, InvalidWorkingDir> => {
    const expanded = input === "~" ? home : input.startsWith("~/") ? path.join(home, input.slice(2)) : input
    if (expanded.includes("\u0000")) {
      return Effect.fail(new InvalidWorkingDir({ workingDir: input, detail: "contains a NUL character" }))
    }
    if (!path.isAbsolute(expanded)) {
      return Effect.fail(new InvalidWorkingDir({ workingDir: input, detail: "must be absolute (or start with ~)" }))
    }
    return Effect.succeed(path.resolve(expanded))
  }

  /** The live actor of `id`, brought back from its transcript when it has none; or the typed reason why not. */
  const lookup = (
    id: string
  ): Effect.Effect<SessionActor, InvalidSessionId | SessionNotFound | SessionEnded | ReconnectError> =>
    Effect.flatMap(SessionId.decode(id), (sessionId) =>
      activate(sessionId).pipe(
        Effect.catchTag(
          "ReconnectError",
          (error): Effect.Effect<never, ReconnectError | SessionNotFound | SessionEnded> =>
            error.reason._tag === "TranscriptNotFound"
              ? Effect.fail(new SessionNotFound({ sessionId }))
              : error.reason._tag === "SessionEnded"
              ? Effect.fail(error.reason)
              : Effect.fail(error)
        )
      ))

  /** The live actor of `id`, if there is one; for the operations that are no-ops otherwise. */
  const live = (id: string): SessionActor | undefined => SessionId.isSessionId(id) ? actors.get(id) : undefined

  const createSession = Effect.fn("SessionBackend.createSession")(function*(create: CreateOptions = {}) {
    const workingDir = yield* resolveWorkingDir(create.workingDir ?? "~")
    const bundle = yield* loader.load(create.bundle)
    const sessionId = yield* SessionId.make
    const location = yield* store.locate(sessionId, workingDir).pipe(Effect.orDie)
    const info = new SessionInfo({
      sessionId,
      projectId: projectIdOf(workingDir),
      workingDir,
      isActive: true,
      ...(create.app !== undefined ? { app: create.app } : {}),
      ...(create.description !== undefined ? { description: create.description } : {}),
      bundle: bundle.name,
      bundleVersion: bundle.version
    })
    yield* store.save(location, [])
    yield* store.saveMetadata(location, {
      session_id: sessionId,
      created: new Date(yield* Clock.currentTimeMillis).toISOString(),
      bundle: bundle.name,
      bundle_version: bundle.version,
      working_dir: workingDir,
      description: create.description ?? "",
      ...(create.app !== undefined ? { app: create.app } : {}),
      turn_count: 0
    })
    yield* startActor(info, bundle, location, [], 0)
    return info
  })

  const { activate, startActor } = makeActivation({
    actors,
    tombstones,
    isStopping: () => stopping,
    store,
    loader,
    guard,
    config,
    replayWindow,
    backendScope,
    resolveWorkingDir
  })

  const resumeSession = Effect.fn("SessionBackend.resumeSession")(
    function*(id: string, resumeOptions: ResumeOptions = {}) {
      const sessionId = yield* SessionId.decode(id).pipe(Effect.orDie)
      const actor = yield* activate(sessionId, resumeOptions.workingDir)
      return actor.info
    }
  )

  const sendMessage = (id: string, text: string): Effect.Effect<string, SendError> =>
    Effect.suspend(() => {
      // the hot path: a live id needs no further checks (only valid ids are ever live)
      const actor = actors.get(id as SessionId.SessionId)
      return actor !== undefined ? actor.send(text) : Effect.flatMap(lookup(id), (found) => found.send(text))
    })

  const execute = (id: string, prompt: string) =>
    Stream.unwrap(Effect.flatMap(lookup(id), (actor) => {
      const from = actor.log.lastSeq
      return Effect.map(
        actor.offer(prompt),
        (envelope): Stream.Stream<SessionEvent.SessionEvent, SendError | EventsUnavailable> => {
          const ours = (event: SessionEvent.SessionEvent) => "turn" in event && event.turn === envelope.turn
          return actor.log.stream(from).pipe(
            Stream.dropWhile((event) => !(event._tag === "prompt:submit" && ours(event))),
            Stream.takeUntil((event) => event._tag === "orchestrator:complete" && ours(event)),
            Stream.concat(Stream.fromEffectDrain(Deferred.await(envelope.reply)))
          )
        }
      )
    }))

  const events = (id: string, eventsOptions: EventsOptions = {}) =>
    Stream.unwrap(Effect.map(
      Effect.catchTag(lookup(id), "SessionEnded", (ended) =>
        Effect.fail(new SessionNotFound({ sessionId: ended.sessionId }))),
      (actor) =>
        actor.log.stream(eventsOptions.after)
    ))

  const cancelSession = Effect.fn("SessionBackend.cancelSession")(
    function*(id: string, level: CancelLevel = "graceful") {
      const actor = live(id)
      if (actor !== undefined) yield* actor.cancel(level)
    }
  )

  const endSession = Effect.fn("SessionBackend.endSession")(function*(id: string) {
    if (!SessionId.isSessionId(id)) return
    // the tombstone first: in memory at once, then on disk, so the session never comes back
    tombstones.add(id)
    const actor = live(id)
    const location = yield* store.find(id).pipe(Effect.option)
    if (Option.isSome(location)) yield* store.saveMetadata(location.value, { ended: true }).pipe(Effect.ignore)
    if (actor === undefined || actor.endReason === "passivated") return
    // in the backend's scope, so a caller that goes away cannot cut the shutdown short; it starts
    // at once, so the session stops accepting messages before this call returns or suspends
    yield* Effect.forkIn(shutdown(actor, "ended", endDrain), backendScope, { startImmediately: true })
    yield* Deferred.await(actor.closed)
  })

  /** Shuts an actor down and forgets it; the shutdown runs once however many callers ask. */
  const shutdown = (actor: SessionActor, reason: "ended" | "stopped" | "passivated", drain: Duration.Duration) =>
    actor.shutdown(reason, drain, () => actors.delete(actor.sessionId))

  const stop = Effect.suspend(() => {
    stopping = true
    return Effect.forEach(actors.values(), (actor) => shutdown(actor, "stopped", stopDrain), {
      concurrency: "unbounded",
      discard: true
    })
  }).pipe(Effect.uninterruptible, Effect.withSpan("SessionBackend.stop"))

  // passivation: one sweeper for all sessions, on the Clock
  const idleMillis = Duration.toMillis(Duration.fromInputUnsafe(options.idleTimeout ?? Duration.minutes(30)))
  const sweep = Effect.suspend(() => {
    const now = config.clock.currentTimeMillisUnsafe()
    const idle = Array.from(actors.values()).filter((actor) => actor.isIdle && now - actor.lastActive >= idleMillis)
    return Effect.forEach(idle, (actor) => shutdown(actor, "passivated", Duration.zero), { discard: true })
  })
  yield* Effect.forkIn(
    Effect.repeat(sweep, Schedule.spaced(Duration.millis(Math.max(1, Math.floor(idleMillis / 10))))),
    backendScope
  )

  // a reloaded bundle: every live session of it hears so
  if (loader.reloads !== undefined) {
    yield* Effect.forkIn(
      Stream.runForEach(loader.reloads, (bundle) =>
        Effect.sync(() => {
          for (const actor of actors.values()) {
            if (actor.info.bundle === bundle.name) {
              actor.publish(SessionEvent.BundleReloaded, { bundle: bundle.name, version: bundle.version })
            }
          }
        })),
      backendScope
    )
  }

  yield* Effect.addFinalizer(() => stop)

  return SessionBackend.of({
    createSession: (create) =>
      stopping
        ? Effect.die(new Error("SessionBackend is stopped"))
        : createSession(create),
    sendMessage,
    execute,
    events,
    cancelSession,
    endSession,
    resumeSession,
    resolveApproval: (id, requestId, choice) =>
      Effect.sync(() => live(id)?.resolveApproval(requestId, choice) ?? false),
    pendingApprovals: (id) =>
      Effect.sync(() => Array.from(live(id)?.approvals?.values() ?? [], (pending) => pending.event)),
    getSessionInfo: (id) => Effect.sync(() => Option.fromNullishOr(live(id)?.info)),
    listActiveSessions: Effect.sync(() => Array.from(actors.values(), (actor) => actor.info)),
    stop
  })
})

const positive = (name: string, value: number): number => {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`SessionBackend option ${name} must be a positive integer, got ${value}`)
  }
  return value
}

/** The backend with its default options; needs a `BundleLoader`, a `TranscriptStore` and a `CwdGuard`. */
export const layer: Layer.Layer<
  SessionBackend,
  never,
  BundleLoader.BundleLoader | TranscriptStore.TranscriptStore | CwdGuard.CwdGuard
> = Layer.effect(SessionBackend, make())

/** The backend with the given options; needs a `BundleLoader`, a `TranscriptStore` and a `CwdGuard`. */
export const layerWith = (
  options: Options
): Layer.Layer<
  SessionBackend,
  never,
  BundleLoader.BundleLoader | TranscriptStore.TranscriptStore | CwdGuard.CwdGuard
> => Layer.effect(SessionBackend, make(options))

/** Calls the mock backend ran, in order. */
export class MockCalls extends Context.Service<MockCalls, {
  readonly calls: Effect.Effect<ReadonlyArray<RecordedCall>>
}>()("effect-session-backend/SessionBackend/MockCalls") {}

export type { RecordedCall }

const echoBundle: BundleLoader.PreparedBundle = {
  name: "echo",
  version: "0.0.0",
  createSession: () => Effect.succeed({ runTurn: (prompt) => Effect.succeed(prompt) })
}

/**
 * A real backend whose sessions answer every message with the message itself,
 * recording each call it runs (read them from `MockCalls`). Needs nothing.
 */
export const layerMock: Layer.Layer<SessionBackend | MockCalls> = Layer.effectContext(Effect.gen(function*() {
  const calls: Array<RecordedCall> = []
  const backend = yield* make()
  return Context.make(SessionBackend, recording(backend, calls)).pipe(
    Context.add(MockCalls, { calls: Effect.sync(() => calls.slice()) })
  )
})).pipe(
  Layer.provide([BundleLoader.layerBundles([echoBundle]), TranscriptStore.layerMemory(), CwdGuard.layer])
)
