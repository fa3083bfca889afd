/**
 * The whole backend on Node in one layer: transcripts in files under the
 * home folder, bundles from files (or the embedded default) prepared by the
 * agent engine, the cwd guard ahead of every bundle load, hooks, HTTP for the
 * providers, and Node's file system and processes for the tools.
 *
 * @since 0.1.0
 */
import { NodeHttpClient, NodeServices } from "@effect/platform-node"
import { Layer } from "effect"
import * as AgentEngine from "./AgentEngine.ts"
import * as BundleLoader from "./BundleLoader.ts"
import * as CwdGuard from "./CwdGuard.ts"
import * as Hooks from "./Hooks.ts"
import * as SessionBackend from "./SessionBackend.ts"
import type { BundleLoadError } from "./SessionError.ts"
import * as TranscriptStore from "./TranscriptStore.ts"

/** Everything the one-call layer can be told. */
export interface Options extends BundleLoader.FileOptions, AgentEngine.Options {
  /** Where transcripts live; default `~/.amplifier`, the origin's layout. */
  readonly home?: string | undefined
  /** The backend's own options (mailbox capacity, time-outs …). */
  readonly backend?: SessionBackend.Options | undefined
}

/**
 * The backend on Node, with the services an application may want beside it:
 * the `Hooks` registry (register handlers), the `BundleLoader` (reload
 * bundles) and the `TranscriptStore` (list past sessions). Fails when the
 * default bundle cannot be loaded.
 */
export const layer = (
  options: Options = {}
): Layer.Layer<
  SessionBackend.SessionBackend | Hooks.Hooks | BundleLoader.BundleLoader | TranscriptStore.TranscriptStore,
  BundleLoadError
> => {
  const services = Layer.mergeAll(NodeHttpClient.layerNodeHttp, NodeServices.layer, Hooks.layer)
  const engine = AgentEngine.layer(options).pipe(Layer.provideMerge(services))
  const loader = CwdGuard.layerGuardedBundleLoader.pipe(
    Layer.provide(BundleLoader.layerFile(options).pipe(Layer.provide(engine))),
    Layer.provideMerge(CwdGuard.layer)
  )
  return SessionBackend.layerWith(options.backend ?? {}).pipe(
    Layer.provideMerge(loader),
    Layer.provideMerge(TranscriptStore.layerFileNode({ home: options.home })),
    Layer.provideMerge(engine)
  ) as Layer.Layer<
    SessionBackend.SessionBackend | Hooks.Hooks | BundleLoader.BundleLoader | TranscriptStore.TranscriptStore,
    BundleLoadError
  >
}
