/**
 * The reconnect pipeline and the start of a session's actor: a session that
 * has a transcript but no live actor is activated like a virtual actor, once
 * per id however many callers race for it.
 */
import { Deferred, Effect, Exit, Scope } from "effect"
import type * as BundleLoader from "../BundleLoader.ts"
import type * as CwdGuard from "../CwdGuard.ts"
import type { InvalidWorkingDir, TranscriptStoreError } from "../SessionError.ts"
import { ReconnectError, SessionEnded } from "../SessionError.ts"
import * as SessionEvent from "../SessionEvent.ts"
import type * as SessionId from "../SessionId.ts"
import { SessionInfo } from "../SessionInfo.ts"
import * as Transcript from "../Transcript.ts"
import type * as TranscriptStore from "../TranscriptStore.ts"
import { EventLog } from "./eventLog.ts"
import { SessionActor } from "./sessionActor.ts"
import type { ActorConfig } from "./sessionActor.ts"
import { History } from "./sessionHistory.ts"

/** What activation needs of the backend. */
export interface ActivationDeps {
  readonly actors: Map<SessionId.SessionId, SessionActor>
  readonly tombstones: Set<string>
  readonly isStopping: () => boolean
  readonly store: TranscriptStore.Service
  readonly loader: BundleLoader.BundleLoader["Service"]
  readonly guard: CwdGuard.CwdGuard["Service"]
  readonly config: ActorConfig
  readonly replayWindow: number
  readonly backendScope: Scope.Scope
  readonly resolveWorkingDir: (input: string) => Effect.Effect<string, InvalidWorkingDir>
}

/** Starting actors and activating sessions from their transcripts. */
export const makeActivation = (deps: ActivationDeps) => {
  const { actors, backendScope, config, guard, loader, replayWindow, resolveWorkingDir, store, tombstones } = deps
  /** Starts the actor of a session whose folder is `location`, over the given conversation. */
  const startActor = Effect.fnUntraced(function*(
    info: SessionInfo,
    bundle: BundleLoader.PreparedBundle,
    location: TranscriptStore.Location,
    messages: ReadonlyArray<Transcript.Message>,
    completedTurns: number
  ) {
    const sessionId = info.sessionId as SessionId.SessionId
    const resumed = completedTurns > 0 || messages.length > 0
    // not a child of the backend's scope: `stop`, the backend's finalizer, closes it after the drain
    const scope = yield* Scope.make()
    const history = new History<TranscriptStoreError>(messages, {
      append: (tail) => store.append(location, tail),
      save: (all) => store.save(location, all)
    })
    const agent = yield* bundle.createSession({ sessionId, workingDir: info.workingDir, resumed, history }).pipe(
      Scope.provide(scope),
      Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause)))
    )
    const actor = new SessionActor(
      info,
      agent,
      scope,
      new EventLog(sessionId, replayWindow),
      config,
      history,
      { metadata: (patch) => store.saveMetadata(location, patch) },
      completedTurns
    )
    actors.set(sessionId, actor)
    actor.publish(resumed ? SessionEvent.SessionResume : SessionEvent.SessionStart, {
      bundle: bundle.name,
      workingDir: info.workingDir
    })
    return actor
  })

  /** Activations under way, one per id: every caller for the id waits for the same one. */
  const activations = new Map<SessionId.SessionId, Deferred.Deferred<SessionActor, ReconnectError>>()

  /**
   * The live actor of `sessionId`, or the session brought back from its
   * transcript: tombstone check, transcript, orphan repair (written back), cwd
   * guard, bundle, resumed session with its working directory and history, actor.
   * Exactly one activation runs per id, in the backend's scope.
   */
  const activate = (
    sessionId: SessionId.SessionId,
    workingDirOverride?: string
  ): Effect.Effect<SessionActor, ReconnectError> =>
    Effect.suspend(() => {
      const actor = actors.get(sessionId)
      if (actor !== undefined && actor.status === "open") return Effect.succeed(actor)
      // an actor that is being released: wait for it to go, then bring it back
      if (actor !== undefined && actor.endReason === "passivated") {
        return Effect.andThen(Deferred.await(actor.closed), activate(sessionId, workingDirOverride))
      }
      if (actor !== undefined) {
        return Effect.fail(
          new ReconnectError({ sessionId, reason: new SessionEnded({ sessionId, reason: actor.endReason }) })
        )
      }
      let pending = activations.get(sessionId)
      if (pending === undefined) {
        const done = Deferred.makeUnsafe<SessionActor, ReconnectError>()
        pending = done
        activations.set(sessionId, done)
        const run = Effect.exit(resume(sessionId, workingDirOverride)).pipe(
          Effect.flatMap((exit) => {
            activations.delete(sessionId)
            return Deferred.done(done, exit)
          })
        )
        return Effect.andThen(Effect.forkIn(run, backendScope, { startImmediately: true }), Deferred.await(done))
      }
      return Deferred.await(pending)
    })

  const resume = (sessionId: SessionId.SessionId, workingDirOverride: string | undefined) =>
    Effect.gen(function*() {
      if (tombstones.has(sessionId) || deps.isStopping()) {
        return yield* new SessionEnded({ sessionId, reason: deps.isStopping() ? "stopped" : "ended" })
      }
      const location = yield* store.find(sessionId)
      const loaded = yield* store.load(location)
      const metadata = loaded.metadata
      if (metadata.ended === true) {
        tombstones.add(sessionId)
        return yield* new SessionEnded({ sessionId, reason: "ended" })
      }
      const repaired = Transcript.repair(loaded.messages, "interrupted by restart")
      if (repaired.inserted + repaired.dropped > 0 || loaded.tornLastLine) {
        yield* store.save(location, repaired.messages)
      }
      yield* guard.ensure
      const bundle = yield* loader.load(typeof metadata.bundle === "string" ? metadata.bundle : undefined)
      const workingDir = yield* resolveWorkingDir(
        workingDirOverride ?? (typeof metadata.working_dir === "string" ? metadata.working_dir : "~")
      )
      const info = new SessionInfo({
        sessionId,
        projectId: location.projectId,
        workingDir,
        isActive: true,
        ...(typeof metadata.app === "string" ? { app: metadata.app } : {}),
        ...(typeof metadata.description === "string" ? { description: metadata.description } : {}),
        bundle: bundle.name,
        bundleVersion: bundle.version
      })
      const turns = typeof metadata.turn_count === "number" ? metadata.turn_count : 0
      return yield* startActor(info, bundle, location, repaired.messages, turns)
    }).pipe(
      Effect.catchTag("InvalidSessionId", Effect.die),
      Effect.mapError((reason) => new ReconnectError({ sessionId, reason }))
    )

  return { activate, startActor }
}
