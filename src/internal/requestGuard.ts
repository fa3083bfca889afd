/**
 * Checks every request passes before any route sees it: browser requests from
 * another origin are refused (403), bodies over the limit too (413).
 */
import { ByteSize, Cause, Effect, Schema } from "effect"
import { HttpIncomingMessage, HttpServerRequest, HttpServerResponse } from "effect/http"
import * as SessionApi from "../SessionApi.ts"

/** Whether an `Origin` header names the server's own host and port (the `Host` header). */
export const isSameOrigin = (origin: string, host: string | undefined): boolean => {
  if (host === undefined) return false
  try {
    const url = new URL(origin)
    return (url.protocol === "http:" || url.protocol === "https:") && url.host.toLowerCase() === host.toLowerCase()
  } catch {
    return false
  }
}

const encodeForbidden = Schema.encodeSync(Schema.toCodecJson(SessionApi.Forbidden))
const encodeTooLarge = Schema.encodeSync(Schema.toCodecJson(SessionApi.PayloadTooLarge))

const forbidden = (origin: string) =>
  HttpServerResponse.jsonUnsafe(
    encodeForbidden(
      new SessionApi.Forbidden({ error: "Forbidden", message: `Requests from origin '${origin}' are not allowed` })
    ),
    { status: 403 }
  )

const tooLarge = (limit: number) =>
  HttpServerResponse.jsonUnsafe(
    encodeTooLarge(
      new SessionApi.PayloadTooLarge({
        error: "PayloadTooLarge",
        message: `The request body is over the limit of ${limit} bytes`
      })
    ),
    // the rest of the body is not read, so the connection cannot be reused
    { status: 413, headers: { connection: "close" } }
  )

/** Whether a failure is the body reader giving up at the size limit. */
const isBodyTooLarge = (cause: Cause.Cause<unknown>): boolean =>
  cause.reasons.some((reason) =>
    reason._tag === "Fail" ? hasMaxBytes(reason.error, 0) : reason._tag === "Die" && hasMaxBytes(reason.defect, 0)
  )

const hasMaxBytes = (value: unknown, depth: number): boolean => {
  if (depth > 4 || typeof value !== "object" || value === null) return false
  if ("_tag" in value && value._tag === "MaxBytesError") return true
  return ("cause" in value && hasMaxBytes(value.cause, depth + 1)) ||
    ("reason" in value && hasMaxBytes(value.reason, depth + 1))
}

/**
 * Wraps the whole app: a request with an `Origin` that is not the server's own
 * is a 403 (requests without one, from curl or other servers, pass); a body
 * declared or read over `maxBodySize` bytes is a 413.
 */
export const make = (maxBodySize: number) =>
<E, R>(
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest> =>
  Effect.flatMap(Effect.service(HttpServerRequest.HttpServerRequest), (request) => {
    const origin = request.headers.origin
    if (origin !== undefined && !isSameOrigin(origin, request.headers.host)) return Effect.succeed(forbidden(origin))
    const length = request.headers["content-length"]
    if (length !== undefined && Number(length) > maxBodySize) return Effect.succeed(tooLarge(maxBodySize))
    return app.pipe(
      Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(maxBodySize)),
      Effect.catchCause((cause) =>
        isBodyTooLarge(cause) ? Effect.succeed(tooLarge(maxBodySize)) : Effect.failCause(cause)
      )
    )
  })
