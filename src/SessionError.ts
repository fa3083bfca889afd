/**
 * Every failure that crosses the backend's boundary, one schema-backed tagged
 * error per failure mode, so callers (and HTTP clients, after encoding) can
 * match on `_tag`.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/** How hard a cancel stops a turn. */
export const CancelLevel = Schema.Literals(["graceful", "immediate"])
/** How hard a cancel stops a turn. */
export type CancelLevel = typeof CancelLevel.Type

/** Why a session stopped accepting messages: ended for good, stopped with the backend, or released when idle. */
export const EndReason = Schema.Literals(["ended", "stopped", "passivated"])
/** Why a session stopped accepting messages. */
export type EndReason = typeof EndReason.Type

/** No live session and nothing on disk to bring back has this id. */
export class SessionNotFound extends Schema.TaggedError<SessionNotFound>()("SessionNotFound", {
  sessionId: Schema.String
}) {
  override get message() {
    return `No session with id '${this.sessionId}'`
  }
}

/**
 * The session was ended (`reason: "ended"`, permanent: it never comes back) or
 * the backend is stopping (`reason: "stopped"`).
 */
export class SessionEnded extends Schema.TaggedError<SessionEnded>()("SessionEnded", {
  sessionId: Schema.String,
  reason: EndReason
}) {
  override get message() {
    return this.reason === "ended"
      ? `Session '${this.sessionId}' has ended`
      : this.reason === "stopped"
      ? `Session '${this.sessionId}' was stopped with the backend`
      : `Session '${this.sessionId}' was released from memory while idle`
  }
}

/** The turn was cancelled at the given level before it answered. */
export class TurnCancelled extends Schema.TaggedError<TurnCancelled>()("TurnCancelled", {
  sessionId: Schema.String,
  level: CancelLevel
}) {
  override get message() {
    return `The turn of session '${this.sessionId}' was cancelled (${this.level})`
  }
}

/** The turn failed; `cause` is what the engine failed or died with. */
export class TurnFailed extends Schema.TaggedError<TurnFailed>()("TurnFailed", {
  sessionId: Schema.String,
  cause: Schema.Defect()
}) {
  override get message() {
    return `The turn of session '${this.sessionId}' failed: ${String(this.cause)}`
  }
}

/** The session's mailbox already holds `capacity` messages; this one was not accepted. */
export class MailboxFull extends Schema.TaggedError<MailboxFull>()("MailboxFull", {
  sessionId: Schema.String,
  capacity: Schema.Int
}) {
  override get message() {
    return `The mailbox of session '${this.sessionId}' is full (${this.capacity} messages)`
  }
}

/** The requested events are older than the replay window still holds. */
export class EventsUnavailable extends Schema.TaggedError<EventsUnavailable>()("EventsUnavailable", {
  sessionId: Schema.String,
  after: Schema.Int,
  oldestAvailable: Schema.Int
}) {
  override get message() {
    return `Events of session '${this.sessionId}' after #${this.after} are gone; the oldest kept is #${this.oldestAvailable}`
  }
}

/** The session has no transcript to resume from. */
export class TranscriptNotFound extends Schema.TaggedError<TranscriptNotFound>()("TranscriptNotFound", {
  sessionId: Schema.String
}) {
  override get message() {
    return `No transcript for session '${this.sessionId}'`
  }
}

/** A line of a transcript is not a message; `line` is 1-based. */
export class TranscriptCorrupt extends Schema.TaggedError<TranscriptCorrupt>()("TranscriptCorrupt", {
  sessionId: Schema.String,
  line: Schema.Int,
  detail: Schema.String
}) {
  override get message() {
    return `Transcript of session '${this.sessionId}' is corrupt at line ${this.line}: ${this.detail}`
  }
}

/** Reading or writing a session's files failed; `path` says which. */
export class TranscriptStoreError extends Schema.TaggedError<TranscriptStoreError>()("TranscriptStoreError", {
  path: Schema.String,
  detail: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {
  override get message() {
    return `Session files at '${this.path}': ${this.detail}`
  }
}

/** A bundle could not be loaded or prepared. */
export class BundleLoadError extends Schema.TaggedError<BundleLoadError>()("BundleLoadError", {
  bundle: Schema.String,
  detail: Schema.String,
  /** The file at fault, when there is one. */
  path: Schema.optional(Schema.String),
  /** The field at fault (`providers[0].config.model`), when there is one. */
  field: Schema.optional(Schema.String),
  cause: Schema.optional(Schema.Defect())
}) {
  override get message() {
    const where = [this.path, this.field === undefined ? undefined : `field ${this.field}`].filter((part) =>
      part !== undefined
    )
    return `Bundle '${this.bundle}' could not be loaded${
      where.length > 0 ? ` (${where.join(", ")})` : ""
    }: ${this.detail}`
  }
}

/** A working directory that cannot be used for a session. */
export class InvalidWorkingDir extends Schema.TaggedError<InvalidWorkingDir>()("InvalidWorkingDir", {
  workingDir: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `Invalid working directory '${this.workingDir}': ${this.detail}`
  }
}

/** Input that is not a valid session id; `detail` names the rule it broke. */
export class InvalidSessionId extends Schema.TaggedError<InvalidSessionId>()("InvalidSessionId", {
  input: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `Invalid session id: ${this.detail}`
  }
}

/** Why a session could not be brought back. */
export const ReconnectReason = Schema.Union([
  TranscriptNotFound,
  TranscriptCorrupt,
  TranscriptStoreError,
  BundleLoadError,
  InvalidWorkingDir,
  SessionEnded
])
/** Why a session could not be brought back. */
export type ReconnectReason = typeof ReconnectReason.Type

/** Activating a session from its transcript failed; `reason` is the typed cause. */
export class ReconnectError extends Schema.TaggedError<ReconnectError>()("ReconnectError", {
  sessionId: Schema.String,
  reason: ReconnectReason
}) {
  override get message() {
    return `Session '${this.sessionId}' could not be resumed: ${this.reason.message}`
  }
}

/** Every error of the backend's contract. */
export const SessionError = Schema.Union([
  SessionNotFound,
  SessionEnded,
  TurnCancelled,
  TurnFailed,
  MailboxFull,
  EventsUnavailable,
  ReconnectError,
  TranscriptNotFound,
  TranscriptCorrupt,
  TranscriptStoreError,
  BundleLoadError,
  InvalidWorkingDir,
  InvalidSessionId
])
/** Every error of the backend's contract. */
export type SessionError = typeof SessionError.Type

/** The ways a message can fail: what `sendMessage` and `execute` fail with. */
export type SendError =
  | InvalidSessionId
  | SessionNotFound
  | SessionEnded
  | TurnCancelled
  | TurnFailed
  | MailboxFull
  | ReconnectError
