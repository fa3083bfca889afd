/**
 * Turns a composed bundle into sessions that run the orchestrator: picks the
 * provider (the bundle's, else the environment's, else the offline model),
 * the tools (built-in modules and the application's), the hook modules and
 * the sub-agents, per session, confined to the session's working directory.
 *
 * @since 0.1.0
 */
import { Config, Context, Effect, Layer, Option } from "effect"
import type { FileSystem, Path, Scope } from "effect"
import { Toolkit } from "effect/ai"
import type { Tool } from "effect/ai"
import type { HttpClient } from "effect/http"
import type { ChildProcessSpawner } from "effect/process"
import * as BuiltinTools from "./BuiltinTools.ts"
import type { CreateSessionOptions, PreparedBundle } from "./BundleLoader.ts"
import * as Hooks from "./Hooks.ts"
import * as LocalModel from "./LocalModel.ts"
import * as OpenAiCompatible from "./OpenAiCompatible.ts"
import * as Orchestrator from "./Orchestrator.ts"
import { BundleLoadError } from "./SessionError.ts"

/** A module entry of a bundle (`providers`, `tools`, `hooks`). */
export interface ModuleRef {
  readonly module: string
  readonly source?: string | undefined
  readonly config?: Readonly<Record<string, unknown>> | undefined
}

/** A sub-agent of a bundle: what it overrides of its parent. */
export interface AgentSpec {
  readonly description?: string | undefined
  readonly instruction?: string | undefined
  readonly providers?: ReadonlyArray<ModuleRef> | undefined
  readonly tools?: ReadonlyArray<ModuleRef> | undefined
}

/** A composed bundle, as the engine prepares it. */
export interface BundleSpec {
  readonly name: string
  readonly version: string
  readonly instruction: string
  readonly providers: ReadonlyArray<ModuleRef>
  readonly tools: ReadonlyArray<ModuleRef>
  readonly hooks: ReadonlyArray<ModuleRef>
  readonly agents: Readonly<Record<string, AgentSpec>>
  readonly session?: Readonly<Record<string, unknown>> | undefined
  /** The file it came from, for error messages. */
  readonly path?: string | undefined
}

/** What a tool module is given for one session. */
export interface SessionTools {
  readonly sessionId: string
  readonly workingDir: string
  /** The module entry's `config`. */
  readonly config: Readonly<Record<string, unknown>>
}

/** Application parts that bundles name by module id. */
export interface Options {
  /** Tool modules: `tools: [{ module: "crm" }]` in a bundle gives its sessions these tools. */
  readonly tools?: Readonly<Record<string, (session: SessionTools) => Effect.Effect<Orchestrator.Toolset>>> | undefined
  /** Hook modules: `hooks: [{ module: "audit" }]` registers these handlers for each session of the bundle. */
  readonly hooks?:
    | Readonly<
      Record<
        string,
        (config: Readonly<Record<string, unknown>>) => ReadonlyArray<Omit<Hooks.Registration, "sessionId">>
      >
    >
    | undefined
}

/** Prepares bundles. */
export class AgentEngine extends Context.Service<AgentEngine, {
  readonly prepare: (bundle: BundleSpec) => Effect.Effect<PreparedBundle, BundleLoadError>
}>()("effect-session-backend/AgentEngine") {}

/** The services the engine's sessions use: HTTP for providers, files and processes for the built-in tools, hooks. */
export type Requirements =
  | HttpClient.HttpClient
  | FileSystem.FileSystem
  | Path.Path
  | ChildProcessSpawner.ChildProcessSpawner
  | Hooks.Hooks

/** Default base URLs of the OpenAI-compatible provider modules. */
const openAiCompatible: Readonly<Record<string, string | undefined>> = {
  "provider-openai": "https://api.openai.com/v1",
  "provider-openai-compatible": undefined,
  "provider-ollama": "http://127.0.0.1:11434/v1",
  "provider-vllm": "http://127.0.0.1:8000/v1",
  "provider-lmstudio": "http://127.0.0.1:1234/v1",
  "provider-llamacpp": "http://127.0.0.1:8080/v1"
}
const offline = new Set(["provider-local", "provider-offline", LocalModel.name])

/** Builds the engine over the current context's services. */
export const make = (options: Options = {}): Effect.Effect<AgentEngine["Service"], never, Requirements> =>
  Effect.gen(function*() {
    const context = yield* Effect.context<Requirements>()
    const hooks = yield* Hooks.Hooks

    const fail = (bundle: BundleSpec, field: string, detail: string) =>
      new BundleLoadError({
        bundle: bundle.name,
        detail,
        field,
        ...(bundle.path !== undefined ? { path: bundle.path } : {})
      })

    /** The provider the environment configures (`OPENAI_MODEL` …), if any. */
    const fromEnvironment = (bundle: BundleSpec) =>
      Effect.suspend(() => OpenAiCompatible.configOption()).pipe(
        Effect.map(Option.getOrUndefined),
        Effect.mapError((error) =>
          fail(bundle, "environment", `the provider settings in the environment are incomplete: ${error.message}`)
        )
      )

    const openAi = (settings: OpenAiCompatible.Options) =>
      Effect.map(
        OpenAiCompatible.make(settings),
        (service): Orchestrator.Model => ({ provider: "openai-compatible", model: settings.model, service })
      ).pipe(Effect.provideContext(context))

    /** The model of a provider list: the first module we can run, else the environment's, else offline. */
    const resolveModel = (bundle: BundleSpec, providers: ReadonlyArray<ModuleRef>, field: string) =>
      Effect.gen(function*() {
        const unsupported: Array<string> = []
        for (const [i, ref] of providers.entries()) {
          const at = `${field}[${i}]`
          const config = ref.config ?? {}
          if ("api_key" in config) {
            return yield* fail(
              bundle,
              `${at}.config.api_key`,
              "keys are never read from bundle files; name an environment variable with api_key_env"
            )
          }
          if (offline.has(ref.module)) {
            return { provider: "local", model: LocalModel.name, service: yield* LocalModel.make }
          }
          if (!(ref.module in openAiCompatible)) {
            unsupported.push(ref.module)
            continue
          }
          const environment = yield* fromEnvironment(bundle)
          const model = typeof config.model === "string"
            ? config.model
            : typeof config.default_model === "string"
            ? config.default_model
            : environment?.model
          if (model === undefined) {
            return yield* fail(bundle, `${at}.config.model`, "no model: set config.model in the bundle or OPENAI_MODEL")
          }
          const baseUrl = typeof config.base_url === "string"
            ? config.base_url
            : openAiCompatible[ref.module] ?? environment?.baseUrl
          if (baseUrl === undefined) {
            return yield* fail(bundle, `${at}.config.base_url`, "an OpenAI-compatible provider needs a base_url")
          }
          const keyName = typeof config.api_key_env === "string" ? config.api_key_env : "OPENAI_API_KEY"
          const apiKey = Option.getOrUndefined(
            yield* Config.option(Config.Redacted(keyName)).pipe(Effect.orElseSucceed(() => Option.none()))
          )
          return yield* openAi({ baseUrl, model, ...(apiKey !== undefined ? { apiKey } : {}) })
        }
        const environment = yield* fromEnvironment(bundle)
        if (environment !== undefined) return yield* openAi(environment)
        if (unsupported.length > 0) {
          yield* Effect.logWarning(
            `bundle ${bundle.name}: provider modules ${unsupported.join(", ")} are not built in; ` +
              `using the offline model (set OPENAI_MODEL, or use provider-openai / provider-ollama / provider-vllm)`
          )
        }
        return { provider: "local", model: LocalModel.name, service: yield* LocalModel.make }
      })

    /** The toolsets of a tool list for one session. */
    const resolveTools = (bundle: BundleSpec, refs: ReadonlyArray<ModuleRef>, session: CreateSessionOptions) =>
      Effect.gen(function*() {
        const builtin = new Set<string>()
        const toolsets: Array<Orchestrator.Toolset> = []
        for (const ref of refs) {
          const names = BuiltinTools.moduleTools[ref.module]
          if (names !== undefined) {
            for (const name of names) builtin.add(name)
            continue
          }
          const app = options.tools?.[ref.module]
          if (app !== undefined) {
            toolsets.push(
              yield* app({ sessionId: session.sessionId, workingDir: session.workingDir, config: ref.config ?? {} })
            )
            continue
          }
          yield* Effect.logWarning(
            `bundle ${bundle.name}: tool module ${ref.module}${ref.source !== undefined ? ` (${ref.source})` : ""} ` +
              `is neither built in nor registered with AgentEngine.layer({ tools }); its tools are left out`
          )
        }
        if (builtin.size > 0) {
          const selected = Object.values(BuiltinTools.toolkit.tools).filter((tool: Tool.Any) => builtin.has(tool.name))
          const handlers = yield* BuiltinTools.handlers(session.workingDir).pipe(Effect.provideContext(context))
          const withHandler = yield* Effect.provideContext(Toolkit.make(...selected), handlers)
          toolsets.unshift(
            Orchestrator.toolset(
              withHandler,
              (name, params) => BuiltinTools.describeCall(name, params, session.workingDir)
            )
          )
        }
        return toolsets
      })

    /** Registers the bundle's hook modules for one session, for the life of its scope. */
    const registerHooks = (bundle: BundleSpec, session: CreateSessionOptions) =>
      Effect.forEach(bundle.hooks, (ref) => {
        const factory = options.hooks?.[ref.module]
        if (factory === undefined) {
          return Effect.logWarning(
            `bundle ${bundle.name}: hook module ${ref.module} is not registered with AgentEngine.layer({ hooks }); skipped`
          )
        }
        return Effect.forEach(factory(ref.config ?? {}), (registration) =>
          Effect.acquireRelease(
            hooks.register({ ...registration, sessionId: session.sessionId }),
            (unregister) => unregister
          ), { discard: true })
      }, { discard: true })

    const maxIterationsOf = (bundle: BundleSpec): number | undefined => {
      const orchestrator = bundle.session?.orchestrator as { config?: { max_iterations?: unknown } } | undefined
      const value = orchestrator?.config?.max_iterations
      return typeof value === "number" && Number.isInteger(value) && value > 0 ? value : undefined
    }

    const prepare = (bundle: BundleSpec): Effect.Effect<PreparedBundle, BundleLoadError> =>
      Effect.gen(function*() {
        // the provider is resolved once (errors surface at load, not at the first message)
        const model = yield* resolveModel(bundle, bundle.providers, "providers")
        const agentModels = new Map<string, Orchestrator.Model>()
        for (const [name, agent] of Object.entries(bundle.agents)) {
          agentModels.set(
            name,
            agent.providers !== undefined && agent.providers.length > 0
              ? yield* resolveModel(bundle, agent.providers, `agents.${name}.providers`)
              : model
          )
        }
        const options = (
          session: CreateSessionOptions
        ): Effect.Effect<Orchestrator.Options, BundleLoadError, Scope.Scope> =>
          Effect.gen(function*() {
            yield* registerHooks(bundle, session)
            const toolsets = yield* resolveTools(bundle, bundle.tools, session)
            const agents: Record<string, Orchestrator.SubAgent> = {}
            for (const [name, agent] of Object.entries(bundle.agents)) {
              agents[name] = {
                description: agent.description ?? name,
                options: {
                  instruction: agent.instruction ?? "",
                  model: agentModels.get(name) ?? model,
                  toolsets: agent.tools !== undefined ? yield* resolveTools(bundle, agent.tools, session) : toolsets,
                  hooks
                }
              }
            }
            return {
              instruction: bundle.instruction,
              model,
              toolsets,
              hooks,
              maxIterations: maxIterationsOf(bundle),
              agents
            }
          })
        return Orchestrator.prepare({ name: bundle.name, version: bundle.version, options })
      })

    return AgentEngine.of({ prepare })
  })

/** The engine with the given application parts. */
export const layer = (options: Options = {}): Layer.Layer<AgentEngine, never, Requirements> =>
  Layer.effect(AgentEngine, make(options))
