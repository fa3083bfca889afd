/**
 * Server-Sent Events over a stream of session events: the wire format, the
 * heartbeat, and a response whose status still tells a failure that happens
 * before the first event (404, 410 …) from one that happens later (the
 * stream's failure event).
 */
import { Cause, Duration, Effect, Exit, Fiber, Schema, Scope, Stream } from "effect"
import { HttpServerResponse } from "effect/http"
import * as SessionApi from "../SessionApi.ts"
import * as SessionEvent from "../SessionEvent.ts"

/** The event name of a stream's failure, as `effect/http-api` clients read it. */
export const failureEvent = "effect/http-api/stream/failure"

/** A comment line: keeps proxies and browsers from timing the connection out; clients ignore it. */
export const heartbeat = ": heartbeat\n\n"

/** The first line of every stream, a comment, so the answer's headers reach the client before the first event. */
export const opening = ": connected\n\n"

const encodeEvent = Schema.encodeSync(Schema.toCodecJson(SessionEvent.SessionEvent))
const encodeFailure = Schema.encodeSync(
  Schema.fromJsonString(Schema.toCodecJson(Schema.Cause(SessionApi.StreamError, Schema.Defect())))
)

/** One event as an SSE message: `id: <seq>`, `event: <tag>`, `data: <event JSON>`. */
export const renderEvent = (event: SessionEvent.SessionEvent): string =>
  `id: ${event.seq}\nevent: ${event._tag}\ndata: ${JSON.stringify(encodeEvent(event))}\n\n`

/** The last message of a stream that failed after it started. */
export const renderFailure = (error: typeof SessionApi.StreamError.Type): string =>
  `event: ${failureEvent}\ndata: ${encodeFailure(Cause.fail(error))}\n\n`

/** How an SSE response is made. */
export interface Options<E, E2> {
  /** Time between heartbeats, on the Clock. */
  readonly heartbeat: Duration.Input
  /** The answer for a failure of the stream. */
  readonly onError: (error: E) => E2
}

/**
 * An SSE response over `events`. The stream is started before the response is
 * made: when it fails at once (a session that is not there, a cursor outside
 * the replay window) the effect fails with the mapped error, so the client gets
 * that status instead of an empty stream; a later failure is the stream's last
 * message. Closing the connection stops the stream.
 */
export const respond = <E, E2 extends typeof SessionApi.StreamError.Type>(
  events: Stream.Stream<SessionEvent.SessionEvent, E>,
  options: Options<E, E2>
): Effect.Effect<HttpServerResponse.HttpServerResponse, E2> =>
  // the stream outlives this handler (it is read while the response is written), so it gets its own scope,
  // closed when the stream ends or the connection drops, or at once if no response is made
  Effect.flatMap(Scope.make(), (scope) =>
    start(events, options, scope).pipe(Effect.onError(() => Scope.close(scope, Exit.void))))

const start = <E, E2 extends typeof SessionApi.StreamError.Type>(
  events: Stream.Stream<SessionEvent.SessionEvent, E>,
  options: Options<E, E2>,
  scope: Scope.Closeable
): Effect.Effect<HttpServerResponse.HttpServerResponse, E2> =>
  Effect.gen(function*() {
    const pull = yield* Stream.toPull(events).pipe(Scope.provide(scope))
    const first = yield* Effect.forkIn(pull, scope, { startImmediately: true })
    yield* Effect.yieldNow
    const early = first.pollUnsafe()
    if (early !== undefined && Exit.isFailure(early)) {
      const error = Cause.findError(early.cause)
      if (error._tag === "Success" && !Cause.isDone(error.success)) {
        return yield* Effect.fail(options.onError(error.success as E))
      }
    }
    let started = false
    const rest = Stream.fromPull(Effect.succeed(Effect.suspend(() => {
      if (started) return pull
      started = true
      return Fiber.join(first)
    })))
    const ticks = Stream.tick(options.heartbeat).pipe(Stream.drop(1), Stream.map(() => heartbeat))
    const body = rest.pipe(
      Stream.map(renderEvent),
      Stream.merge(ticks, { haltStrategy: "left" }),
      Stream.catch((error) => Stream.succeed(renderFailure(options.onError(error)))),
      (stream) => Stream.concat(Stream.succeed(opening), stream),
      Stream.encodeText,
      Stream.ensuring(Scope.close(scope, Exit.void))
    )
    return HttpServerResponse.stream(body, {
      contentType: "text/event-stream",
      headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
    })
  })

/** The interval between heartbeats when none is given. */
export const defaultHeartbeat: Duration.Duration = Duration.seconds(15)
