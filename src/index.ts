/**
 * effect-session-backend: long-running AI-agent chat sessions as Effect actors.
 *
 * @since 0.1.0
 */

/** The engine contract between the backend and the agent sessions it runs. */
export * as AgentSession from "./AgentSession.ts"

/** Resolves bundle references to prepared bundles that create sessions. */
export * as BundleLoader from "./BundleLoader.ts"

/** Keeps the process cwd alive for bundle loads. */
export * as CwdGuard from "./CwdGuard.ts"

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

/** Transcripts: the message schema, the JSONL codec and orphan repair. */
export * as Transcript from "./Transcript.ts"

/** Where transcripts and metadata live on disk (or in memory). */
export * as TranscriptStore from "./TranscriptStore.ts"

/** A scripted engine and in-memory layers for tests. */
export * as Testing from "./Testing.ts"
