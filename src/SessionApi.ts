/**
 * The HTTP API of the session backend, as an `effect/http-api` definition:
 * every route with the schemas of its parameters, bodies, answers and errors.
 * `SessionServer` implements it; `HttpApiClient.make(SessionApi.Api, …)`
 * derives a typed client from it, and `OpenApi.fromApi(SessionApi.Api)` its
 * OpenAPI document.
 *
 * Every error answers with a JSON body `{ error, message }`, where `error` is
 * the tag of the failure (`SessionNotFound`, `TurnCancelled` …); one error
 * class per HTTP status.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import {
  HttpApi,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpApiMiddleware,
  HttpApiSchema,
  HttpApiSecurity,
  OpenApi
} from "effect/http-api"
import { CancelLevel } from "./SessionError.ts"
import * as SessionEvent from "./SessionEvent.ts"
import * as SessionId from "./SessionId.ts"
import { SessionInfo } from "./SessionInfo.ts"
import * as Transcript from "./Transcript.ts"

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/** 400: a body, parameter or header that does not decode, or an invalid session id or working directory. */
export class BadRequest extends Schema.TaggedError<BadRequest>()("BadRequest", {
  error: Schema.Literals(["BadRequest", "InvalidSessionId", "InvalidWorkingDir"]),
  message: Schema.String,
  /** The field at fault (`payload.text`, `params.id` …), when there is one. */
  field: Schema.optionalKey(Schema.String)
}, { httpApiStatus: 400 }) {}

/** 401: no access token, or a wrong one. The answer carries `WWW-Authenticate: Bearer`. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  error: Schema.Literal("Unauthorized"),
  message: Schema.String
}, { httpApiStatus: 401 }) {}

/** 403: a browser request from another origin. */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", {
  error: Schema.Literal("Forbidden"),
  message: Schema.String
}, { httpApiStatus: 403 }) {}

/** 404: no such session, or no such pending approval request of that session. */
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", {
  error: Schema.Literals(["SessionNotFound", "ApprovalNotFound"]),
  message: Schema.String
}, { httpApiStatus: 404 }) {}

/** 409: the turn was cancelled before it answered. */
export class Conflict extends Schema.TaggedError<Conflict>()("Conflict", {
  error: Schema.Literal("TurnCancelled"),
  message: Schema.String,
  level: CancelLevel
}, { httpApiStatus: 409 }) {}

/** 410: the session has ended, or the events asked for are older than the replay window (see `oldestAvailable`). */
export class Gone extends Schema.TaggedError<Gone>()("Gone", {
  error: Schema.Literals(["SessionEnded", "EventsUnavailable"]),
  message: Schema.String,
  /** For `EventsUnavailable`: the oldest sequence number still held; reconnect with `after` at least one less. */
  oldestAvailable: Schema.optionalKey(Schema.Int)
}, { httpApiStatus: 410 }) {}

/** 413: a request body over the limit (1 MiB). */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", {
  error: Schema.Literal("PayloadTooLarge"),
  message: Schema.String
}, { httpApiStatus: 413 }) {}

/** 422: the bundle could not be loaded. */
export class UnprocessableEntity extends Schema.TaggedError<UnprocessableEntity>()("UnprocessableEntity", {
  error: Schema.Literal("BundleLoadError"),
  message: Schema.String
}, { httpApiStatus: 422 }) {}

/** 429: the session's mailbox is full; try again later. */
export class TooManyRequests extends Schema.TaggedError<TooManyRequests>()("TooManyRequests", {
  error: Schema.Literal("MailboxFull"),
  message: Schema.String
}, { httpApiStatus: 429 }) {}

/** 500: the session could not be brought back (`reason` is the tag of the cause), or its files failed. */
export class InternalError extends Schema.TaggedError<InternalError>()("InternalError", {
  error: Schema.Literals(["ReconnectError", "TranscriptStoreError"]),
  message: Schema.String,
  reason: Schema.optionalKey(Schema.String)
}, { httpApiStatus: 500 }) {}

/** 502: the turn failed in the engine (the model, a tool …). */
export class BadGateway extends Schema.TaggedError<BadGateway>()("BadGateway", {
  error: Schema.Literal("TurnFailed"),
  message: Schema.String
}, { httpApiStatus: 502 }) {}

/** Every error answer of the API. */
export type ApiError =
  | BadRequest
  | Unauthorized
  | Forbidden
  | NotFound
  | Conflict
  | Gone
  | PayloadTooLarge
  | UnprocessableEntity
  | TooManyRequests
  | InternalError
  | BadGateway

/** The errors of a message: what `messages` answers with and what ends an `execute` stream. */
export const SendErrors = [BadRequest, NotFound, Conflict, Gone, TooManyRequests, InternalError, BadGateway] as const

/** What ends an event stream early, sent as the stream's failure event. */
export const StreamError = Schema.Union([
  BadRequest,
  NotFound,
  Conflict,
  Gone,
  TooManyRequests,
  InternalError,
  BadGateway
])

// -----------------------------------------------------------------------------
// middleware
// -----------------------------------------------------------------------------

/** The access token as `Authorization: Bearer <token>`; every route but `health`. */
export class Authorization extends HttpApiMiddleware.Service<Authorization>()(
  "effect-session-backend/SessionApi/Authorization",
  { error: Unauthorized, security: { bearer: HttpApiSecurity.bearer } }
) {}

/**
 * The access token of the event streams: the bearer header, or `?token=` for
 * `EventSource`, which cannot set headers.
 */
export class StreamAuthorization extends HttpApiMiddleware.Service<StreamAuthorization>()(
  "effect-session-backend/SessionApi/StreamAuthorization",
  {
    error: Unauthorized,
    security: { bearer: HttpApiSecurity.bearer, token: HttpApiSecurity.apiKey({ key: "token", in: "query" }) }
  }
) {}

/** Answers input that does not decode with a `BadRequest` naming the field; also declares the 403 and 413 answers. */
export class RequestErrors extends HttpApiMiddleware.Service<RequestErrors>()(
  "effect-session-backend/SessionApi/RequestErrors",
  { error: [BadRequest, Forbidden, PayloadTooLarge] }
) {}

// -----------------------------------------------------------------------------
// schemas
// -----------------------------------------------------------------------------

/** A session id in a path: checked by the `SessionId` rules before anything uses it. */
export const SessionIdParam = Schema.String.check(Schema.makeFilter(SessionId.violation)).annotate({
  description: "A session id: 1 to 128 characters, no '/', '\\', '..' or control characters"
})

/** The path parameter of every route of one session. */
export const SessionParams = { id: SessionIdParam }

/** What `GET /api/health` answers. */
export const Health = Schema.Struct({ status: Schema.Literal("ok"), sessions: Schema.Int })

/** The body of `POST /api/sessions`; every field may be left out. */
export const CreateSession = Schema.Struct({
  workingDir: Schema.optionalKey(Schema.String),
  bundle: Schema.optionalKey(Schema.String),
  description: Schema.optionalKey(Schema.String),
  app: Schema.optionalKey(Schema.String)
})

/** The body of `POST /api/sessions/:id/resume`. */
export const ResumeSession = Schema.Struct({ workingDir: Schema.optionalKey(Schema.String) })

/** A session on disk, live or not, as `stored-sessions` lists it. */
export const StoredSession = Schema.Struct({
  sessionId: Schema.String,
  workingDir: Schema.optionalKey(Schema.String),
  description: Schema.optionalKey(Schema.String),
  bundle: Schema.optionalKey(Schema.String),
  created: Schema.optionalKey(Schema.String),
  lastUpdated: Schema.optionalKey(Schema.String),
  turnCount: Schema.optionalKey(Schema.Number),
  ended: Schema.Boolean,
  live: Schema.Boolean
})

/** What `transcript` answers: the session's conversation as it is on disk. */
export const TranscriptBody = Schema.Struct({ messages: Schema.Array(Transcript.Message) })

/** The body of `messages` and `execute`. */
export const Prompt = Schema.Struct({ text: Schema.String })

/** What `messages` answers: the reply of the turn. */
export const Reply = Schema.Struct({ reply: Schema.String })

/** The body of `cancel`; the level defaults to `graceful`. */
export const Cancel = Schema.Struct({ level: Schema.optionalKey(CancelLevel) })

/** The body of an approval answer. */
export const ApprovalAnswer = Schema.Struct({ choice: Schema.String })

/** What an answered approval gives. */
export const ApprovalResolved = Schema.Struct({ resolved: Schema.Literal(true) })

const Cursor = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

/**
 * A stream of session events as Server-Sent Events: each message has
 * `id: <seq>`, `event: <tag>` and `data: <event JSON>`. A failure after the
 * stream has started is its last message, the `effect/http-api/stream/failure`
 * event (which derived clients turn back into a typed failure).
 */
export const EventStream = HttpApiSchema.StreamSse({ data: SessionEvent.SessionEvent, error: StreamError })

// -----------------------------------------------------------------------------
// endpoints
// -----------------------------------------------------------------------------

/** Liveness, and the OpenAPI document. */
export const System = HttpApiGroup.make("system").add(
  HttpApiEndpoint.get("health", "/health", { success: Health }),
  HttpApiEndpoint.get("openapi", "/openapi.json", { success: Schema.Json }).middleware(Authorization)
)

/** Sessions, messages, cancel and approvals. */
export const Sessions = HttpApiGroup.make("sessions").add(
  HttpApiEndpoint.post("create", "/sessions", {
    payload: CreateSession,
    success: SessionInfo.pipe(HttpApiSchema.status(201)),
    error: [BadRequest, UnprocessableEntity, InternalError]
  }),
  HttpApiEndpoint.get("list", "/sessions", { success: Schema.Array(SessionInfo) }),
  HttpApiEndpoint.get("stored", "/stored-sessions", {
    success: Schema.Array(StoredSession),
    error: InternalError
  }).annotate(
    OpenApi.Description,
    "Every session on disk, live or not, most recently updated first: what a client offers to resume."
  ),
  HttpApiEndpoint.get("transcript", "/sessions/:id/transcript", {
    params: SessionParams,
    success: TranscriptBody,
    error: [NotFound, InternalError]
  }),
  HttpApiEndpoint.get("get", "/sessions/:id", { params: SessionParams, success: SessionInfo, error: NotFound }),
  HttpApiEndpoint.post("resume", "/sessions/:id/resume", {
    params: SessionParams,
    payload: ResumeSession,
    success: SessionInfo,
    error: [BadRequest, NotFound, Gone, UnprocessableEntity, InternalError]
  }),
  HttpApiEndpoint.delete("end", "/sessions/:id", { params: SessionParams }),
  HttpApiEndpoint.post("send", "/sessions/:id/messages", {
    params: SessionParams,
    payload: Prompt,
    success: Reply,
    error: SendErrors
  }),
  HttpApiEndpoint.post("cancel", "/sessions/:id/cancel", {
    params: SessionParams,
    payload: Cancel,
    success: HttpApiSchema.Accepted
  }),
  HttpApiEndpoint.get("approvals", "/sessions/:id/approvals", {
    params: SessionParams,
    success: Schema.Array(SessionEvent.ApprovalRequired)
  }),
  HttpApiEndpoint.post("resolveApproval", "/sessions/:id/approvals/:requestId", {
    params: { id: SessionIdParam, requestId: Schema.String },
    payload: ApprovalAnswer,
    success: ApprovalResolved,
    error: NotFound
  })
).middleware(Authorization)

/** The event streams (Server-Sent Events); they also take the token as `?token=`. */
export const Streams = HttpApiGroup.make("streams").add(
  HttpApiEndpoint.post("execute", "/sessions/:id/execute", {
    params: SessionParams,
    payload: Prompt,
    success: EventStream,
    error: SendErrors
  }).annotate(
    OpenApi.Description,
    "Sends a message and streams the events of its turn; the stream ends with the turn."
  ),
  HttpApiEndpoint.get("events", "/sessions/:id/events", {
    params: SessionParams,
    /** `after`: the last sequence number seen; replays what came after it. */
    query: { after: Schema.optionalKey(Cursor) },
    /** The standard reconnect header of `EventSource`; wins over `after`. */
    headers: { "last-event-id": Schema.optionalKey(Cursor) },
    success: EventStream,
    error: [BadRequest, NotFound, Gone, InternalError]
  }).annotate(
    OpenApi.Description,
    "Every event of the session. Reconnect with Last-Event-ID (or ?after=) to get exactly what was missed; " +
      "a cursor older than the replay window is a 410 with oldestAvailable. A comment line is sent every 15 s."
  )
).middleware(StreamAuthorization)

/** The whole API, under `/api`. */
export const Api = HttpApi.make("SessionApi")
  .add(System, Sessions, Streams)
  .middleware(RequestErrors)
  .prefix("/api")
  .annotate(OpenApi.Title, "effect-session-backend")
  .annotate(OpenApi.Version, "0.1.0")
  .annotate(
    OpenApi.Description,
    "Long-running AI-agent chat sessions: create them, send messages, stream their events (Server-Sent Events), " +
      "cancel turns and answer approvals. Every route but /api/health needs the access token as a Bearer header."
  )
