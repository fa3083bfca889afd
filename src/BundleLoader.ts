/**
 * Where sessions come from: a loader resolves a bundle reference to a
 * prepared bundle, and a prepared bundle creates agent sessions.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"
import type { Scope, Stream } from "effect"
import type { AgentSession, SessionHistory } from "./AgentSession.ts"
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
