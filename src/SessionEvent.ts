/**
 * The events a session emits, as one tagged union. Every event carries the
 * session id, a per-session sequence number (1, 2, 3 … without gaps, the key
 * for replay) and the Clock time it was emitted at; the tag is the wire name
 * of the domain (`"content_block:delta"`).
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { CancelLevel, EndReason } from "./SessionError.ts"

const envelope = {
  sessionId: Schema.String,
  seq: Schema.Int,
  timestamp: Schema.Number
}

/** The session was created. */
export class SessionStart extends Schema.TaggedClass<SessionStart>()("session:start", {
  ...envelope,
  bundle: Schema.String,
  workingDir: Schema.String
}) {}

/** The session was brought back from its transcript. */
export class SessionResume extends Schema.TaggedClass<SessionResume>()("session:resume", {
  ...envelope,
  bundle: Schema.String,
  workingDir: Schema.String
}) {}

/** The session ended (for good) or was stopped with the backend; the last event of its stream. */
export class SessionEnd extends Schema.TaggedClass<SessionEnd>()("session:end", {
  ...envelope,
  reason: EndReason
}) {}

/** A turn started with this prompt. */
export class PromptSubmit extends Schema.TaggedClass<PromptSubmit>()("prompt:submit", {
  ...envelope,
  turn: Schema.Int,
  prompt: Schema.String
}) {}

/** A turn answered. */
export class PromptComplete extends Schema.TaggedClass<PromptComplete>()("prompt:complete", {
  ...envelope,
  turn: Schema.Int,
  response: Schema.String
}) {}

/** Kinds of streamed content block. */
export const BlockType = Schema.Literals(["text", "thinking"])

/** A streamed content block opened. */
export class ContentBlockStart extends Schema.TaggedClass<ContentBlockStart>()("content_block:start", {
  ...envelope,
  index: Schema.Int,
  blockType: BlockType
}) {}

/** More text of an open content block. */
export class ContentBlockDelta extends Schema.TaggedClass<ContentBlockDelta>()("content_block:delta", {
  ...envelope,
  index: Schema.Int,
  delta: Schema.String
}) {}

/** A content block closed; `text` is all of it. */
export class ContentBlockEnd extends Schema.TaggedClass<ContentBlockEnd>()("content_block:end", {
  ...envelope,
  index: Schema.Int,
  text: Schema.String
}) {}

/** More of the model's reasoning. */
export class ThinkingDelta extends Schema.TaggedClass<ThinkingDelta>()("thinking:delta", {
  ...envelope,
  delta: Schema.String
}) {}

/** The model's reasoning, whole. */
export class ThinkingFinal extends Schema.TaggedClass<ThinkingFinal>()("thinking:final", {
  ...envelope,
  text: Schema.String
}) {}

/** A tool call is about to run. */
export class ToolPre extends Schema.TaggedClass<ToolPre>()("tool:pre", {
  ...envelope,
  toolCallId: Schema.String,
  tool: Schema.String,
  arguments: Schema.Unknown
}) {}

/** A tool call returned. */
export class ToolPost extends Schema.TaggedClass<ToolPost>()("tool:post", {
  ...envelope,
  toolCallId: Schema.String,
  tool: Schema.String,
  result: Schema.Unknown
}) {}

/** A tool call failed. */
export class ToolError extends Schema.TaggedClass<ToolError>()("tool:error", {
  ...envelope,
  toolCallId: Schema.String,
  tool: Schema.String,
  error: Schema.String
}) {}

/** How a turn ended. */
export const TurnStatus = Schema.Literals(["completed", "cancelled", "failed"])
/** How a turn ended. */
export type TurnStatus = typeof TurnStatus.Type

/** A turn ended; the last event of every turn. */
export class OrchestratorComplete extends Schema.TaggedClass<OrchestratorComplete>()("orchestrator:complete", {
  ...envelope,
  turn: Schema.Int,
  status: TurnStatus
}) {}

/** A cancel of the running turn was asked for. */
export class CancelRequested extends Schema.TaggedClass<CancelRequested>()("cancel:requested", {
  ...envelope,
  level: CancelLevel
}) {}

/** The cancelled turn has stopped. */
export class CancelCompleted extends Schema.TaggedClass<CancelCompleted>()("cancel:completed", {
  ...envelope,
  level: CancelLevel
}) {}

/** The turn waits for a person's choice; answer it with `resolveApproval`. */
export class ApprovalRequired extends Schema.TaggedClass<ApprovalRequired>()("approval:required", {
  ...envelope,
  requestId: Schema.String,
  prompt: Schema.String,
  options: Schema.Array(Schema.String),
  timeoutMillis: Schema.Number,
  default: Schema.String
}) {}

/** An approval request was answered with an allowing choice. */
export class ApprovalGranted extends Schema.TaggedClass<ApprovalGranted>()("approval:granted", {
  ...envelope,
  requestId: Schema.String,
  choice: Schema.String
}) {}

/** Why an approval request ended in a deny. */
export const DenyReason = Schema.Literals(["choice", "timeout"])

/** An approval request ended in a deny: a denying choice, or the default at the time-out. */
export class ApprovalDenied extends Schema.TaggedClass<ApprovalDenied>()("approval:denied", {
  ...envelope,
  requestId: Schema.String,
  choice: Schema.String,
  reason: DenyReason
}) {}

/** Severity of a display message. */
export const DisplayLevel = Schema.Literals(["info", "warning", "error"])

/** Something a hook or tool wants the user to see. */
export class DisplayMessage extends Schema.TaggedClass<DisplayMessage>()("display:message", {
  ...envelope,
  message: Schema.String,
  level: DisplayLevel,
  source: Schema.String
}) {}

/** The orchestrator is about to call the model (`iteration` counts the calls within the turn, from 1). */
export class ProviderRequest extends Schema.TaggedClass<ProviderRequest>()("provider:request", {
  ...envelope,
  turn: Schema.Int,
  iteration: Schema.Int,
  provider: Schema.String,
  model: Schema.String
}) {}

/** The model answered; token counts when the provider reports them. */
export class ProviderResponse extends Schema.TaggedClass<ProviderResponse>()("provider:response", {
  ...envelope,
  turn: Schema.Int,
  iteration: Schema.Int,
  finishReason: Schema.String,
  toolCalls: Schema.Int,
  inputTokens: Schema.optional(Schema.Number),
  outputTokens: Schema.optional(Schema.Number)
}) {}

/** The model call failed; `reason` is the `AiError` reason's tag (`RateLimitError`, `NetworkError` …). */
export class ProviderError extends Schema.TaggedClass<ProviderError>()("provider:error", {
  ...envelope,
  turn: Schema.Int,
  iteration: Schema.Int,
  reason: Schema.String,
  error: Schema.String
}) {}

/** A sub-agent started on a task the model delegated. */
export class DelegateAgentSpawned extends Schema.TaggedClass<DelegateAgentSpawned>()("delegate:agent_spawned", {
  ...envelope,
  agent: Schema.String,
  childSessionId: Schema.String,
  task: Schema.String
}) {}

/** A sub-agent finished its task. */
export class DelegateAgentCompleted extends Schema.TaggedClass<DelegateAgentCompleted>()("delegate:agent_completed", {
  ...envelope,
  agent: Schema.String,
  childSessionId: Schema.String,
  response: Schema.String
}) {}

/** A sub-agent failed or was cancelled. */
export class DelegateError extends Schema.TaggedClass<DelegateError>()("delegate:error", {
  ...envelope,
  agent: Schema.String,
  childSessionId: Schema.String,
  error: Schema.String
}) {}

/** The session's bundle was reloaded; turns from now on use `version`. */
export class BundleReloaded extends Schema.TaggedClass<BundleReloaded>()("bundle:reloaded", {
  ...envelope,
  bundle: Schema.String,
  version: Schema.String
}) {}

/** Every event a session emits. */
export const SessionEvent = Schema.Union([
  SessionStart,
  SessionResume,
  SessionEnd,
  PromptSubmit,
  PromptComplete,
  ContentBlockStart,
  ContentBlockDelta,
  ContentBlockEnd,
  ThinkingDelta,
  ThinkingFinal,
  ToolPre,
  ToolPost,
  ToolError,
  OrchestratorComplete,
  CancelRequested,
  CancelCompleted,
  ApprovalRequired,
  ApprovalGranted,
  ApprovalDenied,
  DisplayMessage,
  ProviderRequest,
  ProviderResponse,
  ProviderError,
  DelegateAgentSpawned,
  DelegateAgentCompleted,
  DelegateError,
  BundleReloaded
])
/** Every event a session emits. */
export type SessionEvent = typeof SessionEvent.Type

/** The wire names of the events. */
export type Tag = SessionEvent["_tag"]

/** The fields every event carries, which the backend fills in. */
export type Envelope = "sessionId" | "seq" | "timestamp"

/** A constructor of one of the event classes. */
export type Constructor = (typeof SessionEvent.members)[number]

/** The fields an emitter supplies for an event of class `C` (everything but the envelope). */
export type Fields<C extends Constructor> = Omit<ConstructorParameters<C>[0], Envelope | "_tag">
