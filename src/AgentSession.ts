/**
 * The engine contract: what a prepared bundle hands the backend for each
 * session, and what the backend hands the engine for each turn. The backend
 * owns ordering, cancellation, events and approvals; the engine owns the
 * conversation.
 *
 * @since 0.1.0
 */
import type { Duration, Effect } from "effect"
import type { TurnCancelled } from "./SessionError.ts"
import type * as SessionEvent from "./SessionEvent.ts"
import type { SessionId } from "./SessionId.ts"
import type { Message } from "./Transcript.ts"

/**
 * A session's conversation, owned by the backend: the engine reads it and adds
 * to it; the backend writes it to the transcript (at each `checkpoint` and at
 * the end of every turn) and repairs it after a cancel. The backend itself adds
 * the user's prompt when a turn starts and the final answer when it succeeds.
 */
export interface SessionHistory {
  /** The conversation so far, without system and developer messages. */
  readonly messages: Effect.Effect<ReadonlyArray<Message>>
  /** Adds messages (an assistant message with tool calls, tool results …) to the conversation. */
  readonly append: (messages: ReadonlyArray<Message>) => Effect.Effect<void>
}

/** A question for a person, asked in the middle of a turn. */
export interface ApprovalRequest {
  readonly prompt: string
  /** The choices offered; default `["allow", "deny"]`. */
  readonly options?: ReadonlyArray<string> | undefined
  /** How long to wait for an answer; default the backend's `approvalTimeout`. */
  readonly timeout?: Duration.Input | undefined
  /** The choice that applies at the time-out; default `"deny"`. */
  readonly default?: string | undefined
}

/** How an approval request ended. `approved` is true only for an explicit allow. */
export interface ApprovalDecision {
  readonly requestId: string
  readonly choice: string
  readonly approved: boolean
  readonly timedOut: boolean
}

/** What the backend gives the engine for one turn. */
export interface TurnContext {
  readonly sessionId: SessionId
  /** The turn's number within the session (1 for the first turn of this activation). */
  readonly turn: number
  /** Emits an event to the session's subscribers; the backend fills in id, sequence number and time. */
  readonly emit: <C extends SessionEvent.Constructor>(event: C, fields: SessionEvent.Fields<C>) => Effect.Effect<void>
  /**
   * A step boundary: fails with `TurnCancelled` when a graceful cancel was asked
   * for, so the engine stops before its next step. An immediate cancel does not
   * wait for a boundary: it interrupts the turn's fiber.
   */
  readonly boundary: Effect.Effect<void, TurnCancelled>
  /** Asks the session's clients a question and waits for the answer or the time-out. */
  readonly requestApproval: (request: ApprovalRequest) => Effect.Effect<ApprovalDecision>
  /** The session's conversation. */
  readonly history: SessionHistory
  /** Writes what was added to the history so far to the transcript; call it after each tool result. */
  readonly checkpoint: Effect.Effect<void>
}

/**
 * A running agent session: runs one turn per prompt and answers with the
 * assistant's reply. A failure becomes the caller's `TurnFailed` (a
 * `TurnCancelled` failure stays a cancel). Its resources live in the scope it
 * was created in, which the backend closes when the session ends.
 */
export interface AgentSession {
  readonly runTurn: (prompt: string, turn: TurnContext) => Effect.Effect<string, unknown>
}

/** Choices that count as an explicit allow; anything else is a deny (fail closed). */
export const isAllowChoice = (choice: string, options: ReadonlyArray<string>): boolean =>
  options.includes(choice) && /^(allow|approve|yes)\b/i.test(choice.trim())
