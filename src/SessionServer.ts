/**
 * The session backend behind HTTP: the handlers of `SessionApi`, the access
 * token and its check, the origin and body-size guards, Server-Sent Events, and
 * a layer that serves it all on Node.
 *
 * @since 0.1.0
 */
import { NodeFileSystem, NodeHttpServer, NodePath } from "@effect/platform-node"
import type { FileSystem, Path, PlatformError } from "effect"
import { Config, Context, Duration, Effect, Layer, Option, Redacted } from "effect"
import { HttpEffect, HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import type { FindMyWay, HttpServerError } from "effect/http"
import { HttpApiBuilder, HttpApiMiddleware, OpenApi } from "effect/http-api"
import * as http from "node:http"
import * as accessToken from "./internal/accessToken.ts"
import { chatPageHtml } from "./internal/chatPage.ts"
import { fromSchemaError, toHttpError } from "./internal/httpErrors.ts"
import * as requestGuard from "./internal/requestGuard.ts"
import * as Sse from "./internal/sse.ts"
import * as SessionApi from "./SessionApi.ts"
import * as SessionBackend from "./SessionBackend.ts"
import * as TranscriptStore from "./TranscriptStore.ts"

/** Where and how the server listens. */
export interface Options {
  /** Default `127.0.0.1`: only this machine can connect. */
  readonly host?: string | undefined
  /** Default 4480; 0 picks a free port (read it from `HttpServer.HttpServer`'s `address`). */
  readonly port?: number | undefined
  /** The access token every route but `health` requires. */
  readonly token: Redacted.Redacted<string>
  /** Time between the heartbeat comments of event streams, on the Clock; default 15 seconds. */
  readonly heartbeat?: Duration.Input | undefined
  /** Largest accepted request body in bytes; default 1 MiB. */
  readonly maxBodySize?: number | undefined
}

/** Default port of the server. */
export const defaultPort = 4480

/** Default limit of a request body: 1 MiB. */
export const defaultMaxBodySize = 1024 * 1024

// -----------------------------------------------------------------------------
// access token
// -----------------------------------------------------------------------------

/** The server's access token. Redacted: it never shows in logs. */
export class AccessToken extends Context.Service<AccessToken, Redacted.Redacted<string>>()(
  "effect-session-backend/AccessToken"
) {}

/**
 * Resolves the access token: `ESB_TOKEN` from the configuration when set, or
 * else the token in `<dataDir>/token`, generated (32 random bytes, base64url;
 * the file 0600 in a folder created 0700) on the first start and reused on
 * later ones.
 */
export const resolveAccessToken: (
  dataDir: string
) => Effect.Effect<
  Redacted.Redacted<string>,
  PlatformError.PlatformError | Config.ConfigError,
  FileSystem.FileSystem | Path.Path
> = accessToken.resolve

/** The access token, resolved as `resolveAccessToken` says, on Node's file system. */
export const layerAccessToken = (options: {
  readonly dataDir: string
}): Layer.Layer<AccessToken, PlatformError.PlatformError | Config.ConfigError> =>
  Layer.effect(AccessToken, resolveAccessToken(options.dataDir)).pipe(
    Layer.provide([NodeFileSystem.layer, NodePath.layer])
  )

// -----------------------------------------------------------------------------
// middleware
// -----------------------------------------------------------------------------

const refusal = new SessionApi.Unauthorized({ error: "Unauthorized", message: "A valid access token is required" })

/** Refuses the request with a `WWW-Authenticate: Bearer` challenge. */
const challenge = Effect.andThen(
  HttpEffect.appendPreResponseHandler((_request, response) =>
    Effect.succeed(HttpServerResponse.setHeader(response, "www-authenticate", "Bearer"))
  ),
  Effect.fail(refusal)
)

/** The token checks of both security middlewares. */
const layerAuthorization = (token: Redacted.Redacted<string>) =>
  Layer.mergeAll(
    Layer.succeed(SessionApi.Authorization, {
      bearer: (httpEffect, { credential }) => accessToken.matches(token, credential) ? httpEffect : challenge
    }),
    Layer.succeed(SessionApi.StreamAuthorization, {
      // the query token is tried after the header: only its refusal answers, with the challenge
      bearer: (httpEffect, { credential }) =>
        accessToken.matches(token, credential) ? httpEffect : Effect.fail(refusal),
      token: (httpEffect, { credential }) => accessToken.matches(token, credential) ? httpEffect : challenge
    })
  )

const layerRequestErrors = HttpApiMiddleware.layerSchemaErrorTransform(
  SessionApi.RequestErrors,
  (error) =>
    error.kind === "Body" || error.kind === "ResponseHeaders" ? Effect.fail(error) : Effect.fail(fromSchemaError(error))
)

// -----------------------------------------------------------------------------
// handlers
// -----------------------------------------------------------------------------

const layerSystem = HttpApiBuilder.group(
  SessionApi.Api,
  "system",
  Effect.fnUntraced(function*(handlers) {
    const backend = yield* SessionBackend.SessionBackend
    let document: HttpServerResponse.HttpServerResponse | undefined
    return handlers
      .handle(
        "health",
        () =>
          Effect.map(backend.listActiveSessions, (sessions) => ({ status: "ok" as const, sessions: sessions.length }))
      )
      .handle(
        "openapi",
        () => Effect.sync(() => document ??= HttpServerResponse.jsonUnsafe(OpenApi.fromApi(SessionApi.Api)))
      )
  })
)

const layerSessions = HttpApiBuilder.group(
  SessionApi.Api,
  "sessions",
  Effect.fnUntraced(function*(handlers) {
    const backend = yield* SessionBackend.SessionBackend
    const store = yield* TranscriptStore.TranscriptStore
    const storeFailure = (error: { readonly message: string }) =>
      new SessionApi.InternalError({
        error: "TranscriptStoreError",
        message: error.message,
        reason: "TranscriptStoreError"
      })
    return handlers.handleAll({
      create: ({ payload }) => Effect.mapError(backend.createSession(payload), toHttpError),
      list: () => backend.listActiveSessions,
      stored: () =>
        Effect.gen(function*() {
          const live = new Set((yield* backend.listActiveSessions).map((info) => info.sessionId))
          return (yield* store.list).map(({ location, metadata }) => {
            const text = (value: unknown) => typeof value === "string" ? value : undefined
            const workingDir = text(metadata.working_dir)
            const description = text(metadata.description)
            const bundle = text(metadata.bundle)
            const created = text(metadata.created)
            const lastUpdated = text(metadata.last_updated)
            return {
              sessionId: location.sessionId,
              ...(workingDir !== undefined ? { workingDir } : {}),
              ...(description !== undefined ? { description } : {}),
              ...(bundle !== undefined ? { bundle } : {}),
              ...(created !== undefined ? { created } : {}),
              ...(lastUpdated !== undefined ? { lastUpdated } : {}),
              ...(typeof metadata.turn_count === "number" ? { turnCount: metadata.turn_count } : {}),
              ended: metadata.ended === true,
              live: live.has(location.sessionId)
            }
          })
        }).pipe(Effect.mapError(storeFailure)),
      transcript: ({ params }) =>
        store.find(params.id).pipe(
          Effect.flatMap(store.load),
          Effect.map((loaded) => ({ messages: loaded.messages })),
          Effect.catchTags({
            TranscriptNotFound: () =>
              Effect.fail(
                new SessionApi.NotFound({ error: "SessionNotFound", message: `No session with id '${params.id}'` })
              ),
            InvalidSessionId: (error) => Effect.fail(toHttpError(error)),
            TranscriptCorrupt: (error) => Effect.fail(storeFailure(error)),
            TranscriptStoreError: (error) => Effect.fail(storeFailure(error))
          })
        ),
      get: ({ params }) =>
        Effect.flatMap(backend.getSessionInfo(params.id), (info) =>
          Option.match(info, {
            onNone: () =>
              Effect.fail(
                new SessionApi.NotFound({ error: "SessionNotFound", message: `No live session with id '${params.id}'` })
              ),
            onSome: Effect.succeed
          })),
      resume: ({ params, payload }) => Effect.mapError(backend.resumeSession(params.id, payload), toHttpError),
      end: ({ params }) => backend.endSession(params.id),
      send: ({ params, payload }) =>
        backend.sendMessage(params.id, payload.text).pipe(
          Effect.map((reply) => ({ reply })),
          Effect.mapError(toHttpError)
        ),
      cancel: ({ params, payload }) => backend.cancelSession(params.id, payload.level),
      approvals: ({ params }) => backend.pendingApprovals(params.id),
      resolveApproval: ({ params, payload }) =>
        Effect.flatMap(
          backend.resolveApproval(params.id, params.requestId, payload.choice),
          (resolved) =>
            resolved
              ? Effect.succeed({ resolved: true as const })
              : Effect.fail(
                new SessionApi.NotFound({
                  error: "ApprovalNotFound",
                  message: `No pending approval request '${params.requestId}' in session '${params.id}'`
                })
              )
        )
    })
  })
)

const layerStreams = (heartbeat: Duration.Input) =>
  HttpApiBuilder.group(
    SessionApi.Api,
    "streams",
    Effect.fnUntraced(function*(handlers) {
      const backend = yield* SessionBackend.SessionBackend
      /** Brings the session back when it is not live, so that a stream's start is decided before the answer. */
      const ensureLive = (id: string) =>
        Effect.flatMap(
          backend.getSessionInfo(id),
          (info) => Option.isSome(info) ? Effect.void : Effect.asVoid(backend.resumeSession(id))
        ).pipe(Effect.mapError(toHttpError))
      return handlers.handleAll({
        execute: ({ params, payload }) =>
          Effect.andThen(
            ensureLive(params.id),
            Sse.respond(backend.execute(params.id, payload.text), { heartbeat, onError: (error) => toHttpError(error) })
          ),
        events: ({ headers, params, query }) =>
          Effect.andThen(
            ensureLive(params.id),
            Sse.respond(backend.events(params.id, { after: headers["last-event-id"] ?? query.after }), {
              heartbeat,
              onError: (error) => toHttpError(error)
            })
          )
      })
    })
  )

// -----------------------------------------------------------------------------
// layers
// -----------------------------------------------------------------------------

/**
 * The router settings the API needs: path parameters longer than the default
 * 100 characters, so a valid session id (up to 128) is routed and a longer one
 * is answered with `InvalidSessionId`, not 404.
 */
export const routerConfig: Partial<FindMyWay.RouterConfig> = { maxParamLength: 4096 }

/** The web chat page at `/`: no secrets in it (the token comes in the URL's fragment), and a strict policy. */
const layerPage = HttpRouter.add(
  "GET",
  "/",
  HttpServerResponse.text(chatPageHtml, {
    contentType: "text/html; charset=utf-8",
    headers: {
      "content-security-policy":
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; " +
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "cache-control": "no-store"
    }
  })
)

/**
 * The routes of the API on the `HttpRouter`, with their middleware and the
 * origin and body-size guards; needs the backend. For embedding in an app's
 * own router and server (serve it with `routerConfig`).
 */
export const layerRoutes = (
  options: Pick<Options, "token" | "heartbeat" | "maxBodySize">
): Layer.Layer<never, never, HttpRouter.HttpRouter | SessionBackend.SessionBackend | TranscriptStore.TranscriptStore> =>
  Layer.mergeAll(
    layerPage,
    HttpApiBuilder.layer(SessionApi.Api).pipe(
      Layer.provide([layerSystem, layerSessions, layerStreams(options.heartbeat ?? Sse.defaultHeartbeat)]),
      Layer.provide([layerAuthorization(options.token), layerRequestErrors]),
      Layer.provide(HttpServer.layerServices)
    ),
    HttpRouter.middleware(requestGuard.make(options.maxBodySize ?? defaultMaxBodySize), { global: true })
  )

/**
 * The whole server on Node: the API under `/api` on `host:port` (default
 * `127.0.0.1:4480`). Needs the backend; gives the `HttpServer`, whose
 * `address` is where it listens (see `url`). Requests are not logged: a query
 * may carry the token.
 */
export const layer = (
  options: Options
): Layer.Layer<
  HttpServer.HttpServer,
  HttpServerError.ServeError,
  SessionBackend.SessionBackend | TranscriptStore.TranscriptStore
> =>
  HttpRouter.serve(layerRoutes(options), { disableLogger: true, disableListenLog: true, routerConfig }).pipe(
    Layer.provideMerge(
      NodeHttpServer.layer(() => http.createServer(), {
        host: options.host ?? "127.0.0.1",
        port: options.port ?? defaultPort
      })
    )
  )

/**
 * The server with the token of `layerAccessToken` (`ESB_TOKEN`, or the token
 * file in `dataDir`); gives the `AccessToken` too, so the app can show how to
 * connect.
 */
export const layerWithAccessToken = (
  options: Omit<Options, "token"> & { readonly dataDir: string }
): Layer.Layer<
  HttpServer.HttpServer | AccessToken,
  HttpServerError.ServeError | PlatformError.PlatformError | Config.ConfigError,
  SessionBackend.SessionBackend | TranscriptStore.TranscriptStore
> =>
  Layer.unwrap(Effect.map(Effect.service(AccessToken), (token) => layer({ ...options, token }))).pipe(
    Layer.provideMerge(layerAccessToken(options))
  )

/** The base URL the server listens on (`http://127.0.0.1:4480`). */
export const url: Effect.Effect<string, never, HttpServer.HttpServer> = Effect.map(
  Effect.service(HttpServer.HttpServer),
  (server) => HttpServer.formatAddress(server.address)
)
