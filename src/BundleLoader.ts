/**
 * Where sessions come from: a loader resolves a bundle reference to a
 * prepared bundle, and a prepared bundle creates agent sessions.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, PubSub, Semaphore, Stream } from "effect"
import type { FileSystem, Path, Scope } from "effect"
import * as AgentEngine from "./AgentEngine.ts"
import type { AgentSession, SessionHistory } from "./AgentSession.ts"
import * as BundleConfig from "./BundleConfig.ts"
import * as DefaultBundle from "./DefaultBundle.ts"
import { BundleLoadError } from "./SessionError.ts"
import type { SessionId } from "./SessionId.ts"

/** What a prepared bundle needs to create a session. */
export interface CreateSessionOptions {
  readonly sessionId: SessionId
  readonly workingDir: string
  /** True when the session is brought back from its transcript. */
  readonly resumed: boolean
  /** The conversation: the transcript of a resumed session, empty for a new one. */
  readonly history: SessionHistory
}

/** A loaded, composed bundle, ready to create sessions. */
export interface PreparedBundle {
  readonly name: string
  readonly version: string
  /** Creates a session whose resources live in the given scope. */
  readonly createSession: (options: CreateSessionOptions) => Effect.Effect<AgentSession, BundleLoadError, Scope.Scope>
}

/** Resolves bundle references (a name or a path; none for the default bundle). */
export class BundleLoader extends Context.Service<BundleLoader, {
  readonly load: (ref?: string) => Effect.Effect<PreparedBundle, BundleLoadError>
  /**
   * Bundles as they are reloaded, for a loader that can reload: the backend
   * tells every live session of that bundle (a `bundle:reloaded` event); their
   * running turns are not disturbed and new sessions get the new version.
   */
  readonly reloads?: Stream.Stream<PreparedBundle> | undefined
  /** Reads a bundle again; when it changed, sessions created from now on use the new version. */
  readonly reload?: ((ref?: string) => Effect.Effect<PreparedBundle, BundleLoadError>) | undefined
}>()("effect-session-backend/BundleLoader") {}

/**
 * A loader that knows the given bundles by name; the first is the default.
 * An unknown reference fails with `BundleLoadError`.
 */
export const layerBundles = (
  bundles: readonly [PreparedBundle, ...Array<PreparedBundle>]
): Layer.Layer<BundleLoader> =>
  Layer.succeed(BundleLoader, {
    load: (ref) => {
      const found = ref === undefined ? bundles[0] : bundles.find((bundle) => bundle.name === ref)
      return found !== undefined
        ? Effect.succeed(found)
        : Effect.fail(
          new BundleLoadError({
            bundle: ref ?? "(default)",
            detail: `unknown bundle; known: ${bundles.map((b) => b.name).join(", ")}`
          })
        )
    }
  })

/** Where a file loader finds its bundles. */
export interface FileOptions {
  /** The default bundle: a bundle file or a folder with `bundle.md` or `bundle.yaml`; default the embedded one. */
  readonly path?: string | undefined
  /** More bundles by name (a file or folder each); a session's `bundle` may also be a path. */
  readonly bundles?: Readonly<Record<string, string>> | undefined
}

interface Loaded {
  readonly fingerprint: string
  readonly prepared: PreparedBundle
}

/**
 * Bundles from files, prepared by the `AgentEngine`. The default bundle is
 * loaded when the layer starts (a bad one fails the layer, naming the file
 * and the field); every bundle is cached. `reload` reads a bundle again and,
 * when it changed, tells the backend, which tells its live sessions.
 */
export const layerFile = (
  options: FileOptions = {}
): Layer.Layer<BundleLoader, BundleLoadError, AgentEngine.AgentEngine | FileSystem.FileSystem | Path.Path> =>
  Layer.effect(
    BundleLoader,
    Effect.gen(function*() {
      const engine = yield* AgentEngine.AgentEngine
      const files = yield* Effect.context<FileSystem.FileSystem | Path.Path>()
      const reloads = yield* PubSub.unbounded<PreparedBundle>()
      const byKey = new Map<string, Loaded>()
      const byName = new Map<string, string>()
      const lock = Semaphore.makeUnsafe(1)

      const read = (key: string): Effect.Effect<BundleConfig.BundleConfig | undefined, BundleLoadError> =>
        key === defaultKey && options.path === undefined
          ? Effect.succeed(undefined)
          : Effect.provideContext(BundleConfig.load(key === defaultKey ? options.path! : key), files)

      const prepareKey = (key: string, reload: boolean): Effect.Effect<PreparedBundle, BundleLoadError> =>
        lock.withPermit(Effect.gen(function*() {
          const cached = byKey.get(key)
          if (cached !== undefined && !reload) return cached.prepared
          const config = yield* read(key)
          const spec = config ?? DefaultBundle.spec
          const fingerprint = config !== undefined ? BundleConfig.fingerprint(config) : "embedded"
          if (cached !== undefined && cached.fingerprint === fingerprint) return cached.prepared
          const prepared = yield* engine.prepare(spec)
          byKey.set(key, { fingerprint, prepared })
          byName.set(prepared.name, key)
          if (cached !== undefined) yield* PubSub.publish(reloads, prepared)
          return prepared
        }))

      const keyOf = (ref: string | undefined): string => {
        if (ref === undefined || ref === "" || ref === "default") return defaultKey
        const named = options.bundles?.[ref]
        if (named !== undefined) return named
        return byName.get(ref) ?? ref
      }

      // pre-warm: the default bundle is ready before the first session asks
      yield* prepareKey(defaultKey, false)
      return BundleLoader.of({
        load: (ref) => prepareKey(keyOf(ref), false),
        reload: (ref) => prepareKey(keyOf(ref), true),
        reloads: Stream.fromPubSub(reloads)
      })
    })
  )

const defaultKey = "\u0000default"
