/**
 * The guard against the origin's second bug: when the directory the process
 * was started in is deleted, `process.cwd()` throws ENOENT and every bundle
 * load fails, so no session can come back. `ensure` moves the process to the
 * home directory (and says so in the log) before that can happen.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import { BundleLoader } from "./BundleLoader.ts"

/** The cwd guard. */
export class CwdGuard extends Context.Service<CwdGuard, {
  /** Makes sure the process cwd exists; if it was deleted, moves to the home directory and logs a warning. */
  readonly ensure: Effect.Effect<void>
}>()("effect-session-backend/CwdGuard") {}

/** Whether the process cwd is still there; `undefined` cwd means it is gone and unknowable. */
const currentCwd = (): { readonly cwd: string | undefined; readonly exists: boolean } => {
  try {
    const cwd = process.cwd()
    return { cwd, exists: fs.existsSync(cwd) }
  } catch {
    return { cwd: undefined, exists: false }
  }
}

/** A guard that moves to `home` (default: the user's home directory). */
export const make = (home: string = os.homedir()): CwdGuard["Service"] => ({
  ensure: Effect.suspend(() => {
    const { cwd, exists } = currentCwd()
    if (exists) return Effect.void
    return Effect.try({
      try: () => process.chdir(home),
      catch: (cause) => new Error(`the working directory is gone and so is the home directory ${home}`, { cause })
    }).pipe(
      Effect.orDie,
      Effect.andThen(
        Effect.logWarning(`the process working directory ${cwd ?? "(deleted)"} no longer exists; moved to ${home}`)
      )
    )
  })
})

/** The guard with the user's home directory. */
export const layer: Layer.Layer<CwdGuard> = Layer.sync(CwdGuard, () => make())

/** The guard with another home directory. */
export const layerWith = (options: { readonly home: string }): Layer.Layer<CwdGuard> =>
  Layer.sync(CwdGuard, () => make(options.home))

/** Puts the guard ahead of the `BundleLoader` it is given: every `load` runs `ensure` first. */
export const layerGuardedBundleLoader: Layer.Layer<BundleLoader, never, BundleLoader | CwdGuard> = Layer.effect(
  BundleLoader,
  Effect.gen(function*() {
    const loader = yield* BundleLoader
    const guard = yield* CwdGuard
    const reload = loader.reload
    return BundleLoader.of({
      ...loader,
      load: (ref) => Effect.andThen(guard.ensure, loader.load(ref)),
      ...(reload !== undefined ? { reload: (ref?: string) => Effect.andThen(guard.ensure, reload(ref)) } : {})
    })
  })
)
