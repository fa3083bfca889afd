/**
 * effect-session-backend: long-running AI-agent chat sessions as Effect actors.
 *
 * @since 0.1.0
 */

/** Prepares bundles into sessions that run the orchestrator: provider, tools, hooks, sub-agents. */
export * as AgentEngine from "./AgentEngine.ts"

/** The engine contract between the backend and the agent sessions it runs. */
export * as AgentSession from "./AgentSession.ts"

/** Bundle files in the origin's format: decoding, includes, composition. */
export * as BundleConfig from "./BundleConfig.ts"

/** Resolves bundle references to prepared bundles that create sessions. */
export * as BundleLoader from "./BundleLoader.ts"

/** The built-in tools, confined to a session's working directory. */
export * as BuiltinTools from "./BuiltinTools.ts"

/** Keeps the process cwd alive for bundle loads. */
export * as CwdGuard from "./CwdGuard.ts"

/** The embedded default bundle. */
export * as DefaultBundle from "./DefaultBundle.ts"

/** Handlers applications register on the orchestrator's hook points. */
export * as Hooks from "./Hooks.ts"

/** The offline model of the default bundle. */
export * as LocalModel from "./LocalModel.ts"

/** The whole backend on Node in one layer: file transcripts, file bundles, engine, tools, hooks. */
export * as NodeBackend from "./NodeBackend.ts"

/** An `effect/ai` LanguageModel for OpenAI and OpenAI-compatible servers. */
export * as OpenAiCompatible from "./OpenAiCompatible.ts"

/** The agent loop: model, parallel tools, approvals, hooks, sub-agents, cancel. */
export * as Orchestrator from "./Orchestrator.ts"

/** The HTTP API definition (effect/http-api), from which clients can be derived. */
export * as SessionApi from "./SessionApi.ts"

/** The session backend service and its layers. */
export * as SessionBackend from "./SessionBackend.ts"

/** Every error of the contract. */
export * as SessionError from "./SessionError.ts"

/** The events sessions emit. */
export * as SessionEvent from "./SessionEvent.ts"

/** Validated session ids. */
export * as SessionId from "./SessionId.ts"

/** What the backend tells about a session. */
export * as SessionInfo from "./SessionInfo.ts"

/** The backend behind HTTP: handlers, access token, guards, Server-Sent Events, the Node server. */
export * as SessionServer from "./SessionServer.ts"

/** Transcripts: the message schema, the JSONL codec and orphan repair. */
export * as Transcript from "./Transcript.ts"

/** Where transcripts and metadata live on disk (or in memory). */
export * as TranscriptStore from "./TranscriptStore.ts"

/** A scripted engine and in-memory layers for tests. */
export * as Testing from "./Testing.ts"
