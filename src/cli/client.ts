/**
 * The CLI's client of a running server: JSON requests with the token, the
 * events of a streamed turn, and errors that say what to do.
 */
import { Data, Effect, Redacted, Stream } from "effect"
import { Sse } from "effect/encoding"
import { HttpClient, HttpClientRequest } from "effect/http"
import type { HttpClientResponse } from "effect/http"

/** A request the server refused or could not be sent; `message` says what to do. */
export class ClientError extends Data.TaggedError("ClientError")<{ readonly message: string }> {}

/** One event of a stream: its tag and its fields. */
export interface StreamedEvent {
  readonly _tag: string
  readonly [field: string]: unknown
}

/** A client of the server at `url` with `token`. */
export const make = (url: string, token: Redacted.Redacted<string>) =>
  Effect.map(HttpClient.HttpClient, (http) => {
    const unreachable = () =>
      new ClientError({
        message: `cannot reach the server at ${url}: start it with \`npm start\` (or \`esb serve\`), or pass --url`
      })

    const checked = (response: HttpClientResponse.HttpClientResponse) =>
      Effect.gen(function*() {
        if (response.status < 400) return response
        const text = yield* response.text.pipe(Effect.orElseSucceed(() => ""))
        let message = text
        try {
          const body = JSON.parse(text) as { message?: string }
          message = body.message ?? text
        } catch {
          // not JSON: keep the text
        }
        return yield* new ClientError({
          message: response.status === 401
            ? "the server refused the access token: set ESB_TOKEN, or pass the --data folder the server uses"
            : `${response.status}: ${message}`
        })
      })

    const send = (method: "GET" | "POST" | "DELETE", route: string, body?: unknown) =>
      Effect.gen(function*() {
        let request = HttpClientRequest.make(method)(`${url}/api${route}`).pipe(HttpClientRequest.bearerToken(token))
        if (body !== undefined) request = HttpClientRequest.bodyJsonUnsafe(request, body)
        const response = yield* http.execute(request).pipe(Effect.mapError(unreachable))
        return yield* checked(response)
      })

    /** A JSON request; answers the parsed body (nothing for an empty one). */
    const json = <A = unknown>(method: "GET" | "POST" | "DELETE", route: string, body?: unknown) =>
      Effect.flatMap(send(method, route, body), (response) =>
        response.text.pipe(
          Effect.mapError(unreachable),
          Effect.map((text) => (text === "" ? undefined : JSON.parse(text)) as A)
        ))

    /** The events of an event-stream route, as they come. */
    const events = (route: string, body: unknown): Stream.Stream<StreamedEvent, ClientError> =>
      Stream.unwrap(Effect.map(send("POST", route, body), (response) => {
        const parsed: Array<StreamedEvent> = []
        const parser = Sse.makeParser((event) => {
          if (event._tag !== "Event") return
          if (event.event === "effect/http-api/stream/failure") {
            parsed.push({ _tag: "stream:failure", data: event.data })
          } else {
            parsed.push(JSON.parse(event.data) as StreamedEvent)
          }
        })
        return response.stream.pipe(
          Stream.mapError(unreachable),
          Stream.decodeText(),
          Stream.flatMap((text) => {
            parser.feed(text)
            return Stream.fromIterable(parsed.splice(0))
          })
        )
      }))

    return { json, events }
  })

/** The client's type. */
export type Client = Effect.Success<ReturnType<typeof make>>
