/**
 * The backend's errors as the API's error answers, and the answer for input
 * that did not decode.
 */
import { SchemaIssue } from "effect"
import type { HttpApiError } from "effect/http-api"
import * as SessionApi from "../SessionApi.ts"
import type * as SessionError from "../SessionError.ts"

/** The API error a backend error becomes, by type. */
export type HttpErrorOf<E> = E extends SessionError.SessionNotFound | SessionError.TranscriptNotFound ?
  SessionApi.NotFound
  : E extends SessionError.SessionEnded | SessionError.EventsUnavailable ? SessionApi.Gone
  : E extends SessionError.TurnCancelled ? SessionApi.Conflict
  : E extends SessionError.TurnFailed ? SessionApi.BadGateway
  : E extends SessionError.MailboxFull ? SessionApi.TooManyRequests
  : E extends SessionError.BundleLoadError ? SessionApi.UnprocessableEntity
  : E extends SessionError.InvalidWorkingDir | SessionError.InvalidSessionId ? SessionApi.BadRequest
  : E extends SessionError.TranscriptCorrupt | SessionError.TranscriptStoreError ? SessionApi.InternalError
  : E extends SessionError.ReconnectError ?
    SessionApi.NotFound | SessionApi.Gone | SessionApi.BadRequest | SessionApi.InternalError
  : never

/**
 * The API error of a backend error: `{ error: <tag>, message }` with the status
 * of its class. A session that could not be brought back because it has no
 * transcript is not found (404), one that has ended is gone (410), one with a
 * bad working directory a bad request (400); any other reason is a 500 that
 * names the reason's tag.
 */
export const toHttpError = <E extends SessionError.SessionError>(error: E): HttpErrorOf<E> =>
  convert(error) as HttpErrorOf<E>

const convert = (error: SessionError.SessionError): SessionApi.ApiError => {
  const message = error.message
  switch (error._tag) {
    case "SessionNotFound":
    case "TranscriptNotFound":
      return new SessionApi.NotFound({ error: "SessionNotFound", message })
    case "SessionEnded":
      return new SessionApi.Gone({ error: "SessionEnded", message })
    case "EventsUnavailable":
      return new SessionApi.Gone({ error: "EventsUnavailable", message, oldestAvailable: error.oldestAvailable })
    case "TurnCancelled":
      return new SessionApi.Conflict({ error: "TurnCancelled", message, level: error.level })
    case "TurnFailed":
      return new SessionApi.BadGateway({ error: "TurnFailed", message })
    case "MailboxFull":
      return new SessionApi.TooManyRequests({ error: "MailboxFull", message })
    case "BundleLoadError":
      return new SessionApi.UnprocessableEntity({ error: "BundleLoadError", message })
    case "InvalidWorkingDir":
      return new SessionApi.BadRequest({ error: "InvalidWorkingDir", message, field: "payload.workingDir" })
    case "InvalidSessionId":
      return new SessionApi.BadRequest({ error: "InvalidSessionId", message, field: "params.id" })
    case "TranscriptCorrupt":
    case "TranscriptStoreError":
      return new SessionApi.InternalError({ error: "TranscriptStoreError", message })
    case "ReconnectError": {
      const reason = error.reason
      if (
        reason._tag === "TranscriptNotFound" || reason._tag === "SessionEnded" || reason._tag === "InvalidWorkingDir"
      ) {
        return convert(reason)
      }
      return new SessionApi.InternalError({ error: "ReconnectError", message, reason: reason._tag })
    }
  }
}

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

/**
 * The answer for input that did not decode: a `BadRequest` whose message names
 * each field at fault (`payload.text: Missing key`). A session id that breaks
 * the `SessionId` rules is an `InvalidSessionId`.
 */
export const fromSchemaError = (error: HttpApiError.HttpApiSchemaError): SessionApi.BadRequest => {
  const slot = error.kind.toLowerCase()
  const issues = formatIssues(error.cause.issue).issues.map((issue) => {
    const path = [
      slot,
      ...(issue.path ?? []).map((segment) => String(typeof segment === "object" ? segment.key : segment))
    ]
    return { field: path.join("."), message: issue.message }
  })
  const field = issues[0]?.field ?? slot
  const message = issues.length === 0
    ? `Invalid request ${slot}`
    : issues.map((issue) => `${issue.field}: ${issue.message}`).join("; ")
  return new SessionApi.BadRequest({
    error: field === "params.id" ? "InvalidSessionId" : "BadRequest",
    message,
    field
  })
}
