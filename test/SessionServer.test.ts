import { NodeFileSystem, NodePath } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Deferred, Effect, Exit, Fiber, FileSystem, Layer, Path, Redacted, Stream } from "effect"
import { Testing, TranscriptStore } from "effect-session-backend"
import { FetchHttpClient, HttpClient, HttpClientRequest } from "effect/http"
import { HttpApiClient } from "effect/http-api"
import { TestClock } from "effect/testing"
import * as SessionApi from "../src/SessionApi.ts"
import * as SessionServer from "../src/SessionServer.ts"
import type { SseConnection, SseMessage, TestServer } from "./support/httpClient.ts"
import { call, connect, serve, serveWithBackend } from "./support/httpClient.ts"

const json = (message: SseMessage | undefined): Record<string, unknown> =>
  message?.data === undefined ? {} : JSON.parse(message.data)

/** Reads events (skipping comments) until one matches, returning all of them. */
const readUntil = (sse: SseConnection, last: (message: SseMessage) => boolean) =>
  Effect.gen(function*() {
    const seen: Array<SseMessage> = []
    while (true) {
      const message = yield* sse.nextEvent
      if (message === undefined) return seen
      seen.push(message)
      if (last(message)) return seen
    }
  })

const turnEnd = (turn: number) => (message: SseMessage) =>
  message.event === "orchestrator:complete" && json(message).turn === turn

const createSession = (server: TestServer, body: Record<string, unknown> = {}) =>
  Effect.map(call(server, "POST", "/api/sessions", { body }), (answer) => {
    assert.strictEqual(answer.status, 201, answer.text)
    return answer.json.sessionId as string
  })

const sessionsOf = (server: TestServer) => Effect.map(call(server, "GET", "/api/sessions"), (answer) => answer.array)

describe("SessionServer access", () => {
  it.live("health needs no token; every other route answers 401 with a Bearer challenge without or with a wrong one", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const health = yield* call(server, "GET", "/api/health", { token: null })
      assert.strictEqual(health.status, 200)
      assert.deepStrictEqual(health.json, { status: "ok", sessions: 0 })
      const id = yield* createSession(server)
      const routes: ReadonlyArray<readonly [string, string, unknown?]> = [
        ["GET", "/api/sessions"],
        ["POST", "/api/sessions", {}],
        ["GET", `/api/sessions/${id}`],
        ["POST", `/api/sessions/${id}/messages`, { text: "hi" }],
        ["POST", `/api/sessions/${id}/execute`, { text: "hi" }],
        ["GET", `/api/sessions/${id}/events`],
        ["POST", `/api/sessions/${id}/cancel`, {}],
        ["DELETE", `/api/sessions/${id}`],
        ["GET", "/api/openapi.json"],
        ["GET", "/api/stored-sessions"],
        ["GET", `/api/sessions/${id}/transcript`]
      ]
      for (const [method, path, body] of routes) {
        for (const token of [null, "wrong-token", `${server.token}x`, ""]) {
          const answer = yield* call(server, method, path, { token, body })
          assert.strictEqual(answer.status, 401, `${method} ${path} with ${token}`)
          assert.strictEqual(answer.headers.get("www-authenticate"), "Bearer")
          assert.strictEqual(answer.json.error, "Unauthorized")
        }
      }
      // nothing happened: one session, still live, never sent a message
      assert.deepStrictEqual((yield* sessionsOf(server)).map((info) => info.sessionId), [id])
      const events = yield* connect(server, "GET", `/api/sessions/${id}/events?after=0`)
      assert.deepStrictEqual((yield* events.nextEvent)?.event, "session:start")
      assert.strictEqual((yield* call(server, "GET", "/api/health", { token: null })).json.sessions, 1)
    }))

  it.live("?token= opens the event streams (for EventSource) and nothing else", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const id = yield* createSession(server)
      const events = yield* connect(server, "GET", `/api/sessions/${id}/events?after=0&token=${server.token}`, {
        token: null
      })
      assert.strictEqual(events.status, 200)
      assert.strictEqual((yield* events.nextEvent)?.event, "session:start")
      const wrong = yield* call(server, "GET", `/api/sessions/${id}/events?token=nope`, { token: null })
      assert.strictEqual(wrong.status, 401)
      assert.strictEqual(wrong.headers.get("www-authenticate"), "Bearer")
      const elsewhere = yield* call(server, "GET", `/api/sessions?token=${server.token}`, { token: null })
      assert.strictEqual(elsewhere.status, 401)
    }))

  it.live("a browser request from another origin is refused with 403 and changes nothing", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      for (const origin of ["http://evil.example", "null", server.url.replace("127.0.0.1", "localhost")]) {
        const refused = yield* call(server, "POST", "/api/sessions", { body: {}, headers: { origin } })
        assert.strictEqual(refused.status, 403, origin)
        assert.strictEqual(refused.json.error, "Forbidden")
        assert.strictEqual((yield* call(server, "GET", "/api/health", { headers: { origin } })).status, 403)
      }
      assert.deepStrictEqual(yield* sessionsOf(server), [])
      // the server's own origin, and no origin at all (curl, other servers), pass
      const same = yield* call(server, "POST", "/api/sessions", { body: {}, headers: { origin: server.url } })
      assert.strictEqual(same.status, 201)
      assert.strictEqual((yield* sessionsOf(server)).length, 1)
    }))

  it.live("a body over 1 MiB is a 413, whether it says its length or not, and changes nothing", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const big = JSON.stringify({ description: "x".repeat(1024 * 1024) })
      const declared = yield* call(server, "POST", "/api/sessions", { rawBody: big })
      assert.strictEqual(declared.status, 413)
      assert.strictEqual(declared.json.error, "PayloadTooLarge")
      const chunked = yield* Effect.promise(async () => {
        const bytes = new TextEncoder().encode(big)
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            for (let i = 0; i < bytes.length; i += 64 * 1024) controller.enqueue(bytes.slice(i, i + 64 * 1024))
            controller.close()
          }
        })
        const init = {
          method: "POST",
          body,
          duplex: "half",
          headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json" }
        }
        const response = await fetch(`${server.url}/api/sessions`, init as RequestInit)
        return { status: response.status, body: await response.json() as Record<string, unknown> }
      })
      assert.strictEqual(chunked.status, 413)
      assert.strictEqual(chunked.body.error, "PayloadTooLarge")
      assert.deepStrictEqual(yield* sessionsOf(server), [])
      // just under the limit is fine
      const fits = yield* call(server, "POST", "/api/sessions", {
        body: { description: "x".repeat(1024 * 1024 - 100) }
      })
      assert.strictEqual(fits.status, 201)
    }))
})

describe("SessionServer sessions", () => {
  it.live("create, get, list, resume, message, end: the happy path of every session route", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const created = yield* call(server, "POST", "/api/sessions", {
        body: { workingDir: "/srv/project", description: "demo", app: "web" }
      })
      assert.strictEqual(created.status, 201)
      assert.deepInclude(created.json, {
        projectId: "-srv-project",
        workingDir: "/srv/project",
        isActive: true,
        app: "web",
        description: "demo",
        bundle: "scripted"
      })
      const id = created.json.sessionId as string
      const got = yield* call(server, "GET", `/api/sessions/${id}`)
      assert.deepStrictEqual([got.status, got.json], [200, created.json])
      assert.deepStrictEqual(yield* sessionsOf(server), [created.json])
      const resumed = yield* call(server, "POST", `/api/sessions/${id}/resume`, { body: {} })
      assert.deepStrictEqual([resumed.status, resumed.json], [200, created.json])
      const reply = yield* call(server, "POST", `/api/sessions/${id}/messages`, { body: { text: "hello" } })
      assert.deepStrictEqual([reply.status, reply.json], [200, { reply: "hello" }])
      const watching = yield* connect(server, "GET", `/api/sessions/${id}/events`)
      const ended = yield* call(server, "DELETE", `/api/sessions/${id}`)
      assert.deepStrictEqual([ended.status, ended.text], [204, ""])
      assert.deepStrictEqual(yield* sessionsOf(server), [])
      // a watcher sees the end, then its stream closes
      assert.deepStrictEqual((yield* readUntil(watching, () => false)).map((message) => message.event), ["session:end"])
      const gone = yield* call(server, "GET", `/api/sessions/${id}`)
      assert.deepStrictEqual([gone.status, gone.json.error], [404, "SessionNotFound"])
    }))

  it.live("errors map to statuses with { error, message }: 404, 410, 422, 400, 502", () =>
    Effect.gen(function*() {
      const server = yield* serve({
        script: (prompt) => prompt === "boom" ? [Testing.fail(new Error("engine broke"))] : [Testing.reply(prompt)]
      })
      const unknown = "no-such-session"
      for (
        const [method, path, body] of [
          ["POST", `/api/sessions/${unknown}/messages`, { text: "hi" }],
          ["POST", `/api/sessions/${unknown}/resume`, {}],
          ["POST", `/api/sessions/${unknown}/execute`, { text: "hi" }],
          ["GET", `/api/sessions/${unknown}/events`, undefined]
        ] as const
      ) {
        const answer = yield* call(server, method, path, { body })
        assert.strictEqual(answer.status, 404, path)
        assert.strictEqual(answer.json.error, "SessionNotFound")
        assert.include(answer.json.message as string, unknown)
      }
      // the longest valid id reaches the backend (not the router's 404)
      const longest = yield* call(server, "GET", `/api/sessions/${"x".repeat(128)}`)
      assert.deepStrictEqual([longest.status, longest.json.error], [404, "SessionNotFound"])
      const id = yield* createSession(server)
      const failed = yield* call(server, "POST", `/api/sessions/${id}/messages`, { body: { text: "boom" } })
      assert.strictEqual(failed.status, 502)
      assert.strictEqual(failed.json.error, "TurnFailed")
      assert.include(failed.json.message as string, "engine broke")
      assert.strictEqual((yield* call(server, "DELETE", `/api/sessions/${id}`)).status, 204)
      for (
        const [method, path, body] of [
          ["POST", `/api/sessions/${id}/messages`, { text: "hi" }],
          ["POST", `/api/sessions/${id}/resume`, {}],
          ["POST", `/api/sessions/${id}/execute`, { text: "hi" }],
          ["GET", `/api/sessions/${id}/events`, undefined]
        ] as const
      ) {
        const answer = yield* call(server, method, path, { body })
        assert.strictEqual(answer.status, 410, path)
        assert.strictEqual(answer.json.error, "SessionEnded")
      }
      const bundle = yield* call(server, "POST", "/api/sessions", { body: { bundle: "no-such-bundle" } })
      assert.deepStrictEqual([bundle.status, bundle.json.error], [422, "BundleLoadError"])
      const relative = yield* call(server, "POST", "/api/sessions", { body: { workingDir: "relative/dir" } })
      assert.deepStrictEqual([relative.status, relative.json.error], [400, "InvalidWorkingDir"])
      assert.deepStrictEqual(yield* sessionsOf(server), [])
    }))

  it.live("a session on disk is brought back by any route; one that cannot be is a 500 naming the reason", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const home = yield* fs.makeTempDirectoryScoped()
      const sessionDir = (id: string) => path.join(home, "projects", "-srv", "sessions", id)
      const write = (id: string, transcript: string) =>
        Effect.gen(function*() {
          yield* fs.makeDirectory(sessionDir(id), { recursive: true })
          yield* fs.writeFileString(path.join(sessionDir(id), "transcript.jsonl"), transcript)
          yield* fs.writeFileString(path.join(sessionDir(id), "metadata.json"), JSON.stringify({ working_dir: "/srv" }))
        })
      yield* write("kept", "{\"role\":\"user\",\"content\":\"a\"}\n{\"role\":\"assistant\",\"content\":\"b\"}\n")
      yield* write("again", "{\"role\":\"user\",\"content\":\"a\"}\n")
      yield* write("corrupt", "{\"role\":\"user\",\"content\":\"a\"}\nnot json\n{}\n")
      const server = yield* serve({ store: TranscriptStore.layerFileNode({ home }) })
      const events = yield* connect(server, "GET", "/api/sessions/kept/events?after=0")
      assert.strictEqual(events.status, 200)
      assert.deepInclude(json(yield* events.nextEvent), { _tag: "session:resume", workingDir: "/srv" })
      const resumed = yield* call(server, "POST", "/api/sessions/again/resume", { body: {} })
      assert.deepInclude(resumed.json, { sessionId: "again", workingDir: "/srv", isActive: true })
      for (
        const [method, path, body] of [
          ["POST", "/api/sessions/corrupt/messages", { text: "hi" }],
          ["POST", "/api/sessions/corrupt/resume", {}],
          ["GET", "/api/sessions/corrupt/events", undefined]
        ] as const
      ) {
        const answer = yield* call(server, method, path, { body })
        assert.strictEqual(answer.status, 500, path)
        assert.deepInclude(answer.json, { error: "ReconnectError", reason: "TranscriptCorrupt" })
      }
    }).pipe(Effect.provide([NodeFileSystem.layer, NodePath.layer])))

  it.live("bad input is a 400 that names the field, and changes nothing", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const id = yield* createSession(server)
      const cases: ReadonlyArray<readonly [string, string, { body?: unknown; rawBody?: string }, string, string]> = [
        ["POST", `/api/sessions/${id}/messages`, { rawBody: "{\"text\": " }, "BadRequest", "payload"],
        ["POST", `/api/sessions/${id}/messages`, { body: {} }, "BadRequest", "payload.text"],
        ["POST", `/api/sessions/${id}/messages`, { body: { text: 42 } }, "BadRequest", "payload.text"],
        ["POST", `/api/sessions/${id}/execute`, { body: { prompt: "hi" } }, "BadRequest", "payload.text"],
        ["POST", `/api/sessions/${id}/cancel`, { body: { level: "hard" } }, "BadRequest", "payload.level"],
        ["POST", "/api/sessions", { body: { description: 7 } }, "BadRequest", "payload.description"],
        ["POST", "/api/sessions", { body: [] }, "BadRequest", "payload"],
        ["GET", `/api/sessions/${id}/events?after=-1`, {}, "BadRequest", "query.after"],
        ["GET", `/api/sessions/${id}/events?after=soon`, {}, "BadRequest", "query.after"],
        ["POST", "/api/sessions/a..b/messages", { body: { text: "hi" } }, "InvalidSessionId", "params.id"],
        ["GET", `/api/sessions/${"x".repeat(129)}`, {}, "InvalidSessionId", "params.id"],
        [
          "POST",
          `/api/sessions/${"x".repeat(129)}/messages`,
          { body: { text: "hi" } },
          "InvalidSessionId",
          "params.id"
        ],
        ["POST", "/api/sessions/a%5Cb/messages", { body: { text: "hi" } }, "InvalidSessionId", "params.id"],
        ["POST", "/api/sessions/a%01b/messages", { body: { text: "hi" } }, "InvalidSessionId", "params.id"]
      ]
      for (const [method, path, body, error, field] of cases) {
        const answer = yield* call(server, method, path, body)
        assert.strictEqual(answer.status, 400, `${method} ${path} ${answer.text}`)
        assert.strictEqual(answer.json.error, error, path)
        assert.strictEqual(answer.json.field, field, path)
        assert.include(answer.json.message as string, field, "the message names the field")
      }
      // nothing changed: still one session, and it never saw a prompt
      assert.deepStrictEqual((yield* sessionsOf(server)).map((info) => info.sessionId), [id])
      const events = yield* connect(server, "GET", `/api/sessions/${id}/events?after=0`)
      const reply = yield* call(server, "POST", `/api/sessions/${id}/messages`, { body: { text: "first" } })
      assert.strictEqual(reply.json.reply, "first")
      const seen = yield* readUntil(events, turnEnd(1))
      assert.deepStrictEqual(seen.map((message) => message.event), [
        "session:start",
        "prompt:submit",
        "prompt:complete",
        "orchestrator:complete"
      ])
    }))

  it.live("a full mailbox is a 429", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      const { backend, ...server } = yield* serveWithBackend({
        backend: { mailboxCapacity: 1 },
        script: (prompt) => prompt === "hang" ? [Testing.signal(started), Testing.awaitDeferred(gate)] : []
      })
      const id = yield* createSession(server)
      const running = yield* backend.sendMessage(id, "hang").pipe(Effect.forkChild)
      const queued = yield* backend.sendMessage(id, "queued").pipe(Effect.forkChild)
      yield* Deferred.await(started)
      const refused = yield* call(server, "POST", `/api/sessions/${id}/messages`, { body: { text: "more" } })
      assert.deepStrictEqual([refused.status, refused.json.error], [429, "MailboxFull"])
      const streamed = yield* call(server, "POST", `/api/sessions/${id}/execute`, { body: { text: "more" } })
      assert.deepStrictEqual([streamed.status, streamed.json.error], [429, "MailboxFull"])
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(running)
      yield* Fiber.join(queued)
    }))
})

describe("SessionServer cancel and approvals", () => {
  const cancellable = (started: Deferred.Deferred<void>, gate: Deferred.Deferred<void>): Testing.Script => () => [
    Testing.signal(started),
    Testing.awaitDeferred(gate),
    Testing.reply("finished")
  ]

  it.live("cancel (graceful or immediate) answers 202 and gives the waiting messages request a 409", () =>
    Effect.gen(function*() {
      for (const level of ["graceful", "immediate"] as const) {
        const started = yield* Deferred.make<void>()
        const gate = yield* Deferred.make<void>()
        const server = yield* serve({ script: cancellable(started, gate) })
        const id = yield* createSession(server)
        const waiting = yield* call(server, "POST", `/api/sessions/${id}/messages`, { body: { text: "work" } }).pipe(
          Effect.forkChild
        )
        yield* Deferred.await(started)
        const cancelled = yield* call(server, "POST", `/api/sessions/${id}/cancel`, { body: { level } })
        assert.deepStrictEqual([cancelled.status, cancelled.text], [202, ""])
        // a graceful cancel lets the current step finish; an immediate one does not wait for it
        if (level === "graceful") yield* Deferred.succeed(gate, undefined)
        const answer = yield* Fiber.join(waiting)
        assert.strictEqual(answer.status, 409, level)
        assert.deepInclude(answer.json, { error: "TurnCancelled", level })
        // the session goes on
        yield* Deferred.succeed(gate, undefined)
        const next = yield* call(server, "POST", `/api/sessions/${id}/messages`, { body: { text: "again" } })
        assert.deepStrictEqual(next.json, { reply: "finished" })
      }
    }))

  it.live("cancel without a level is graceful; cancel of an idle or unknown session is a no-op", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      const server = yield* serve({ script: cancellable(started, gate) })
      const id = yield* createSession(server)
      assert.strictEqual((yield* call(server, "POST", `/api/sessions/${id}/cancel`, { body: {} })).status, 202)
      assert.strictEqual((yield* call(server, "POST", "/api/sessions/unknown/cancel", { body: {} })).status, 202)
      const waiting = yield* call(server, "POST", `/api/sessions/${id}/messages`, { body: { text: "work" } }).pipe(
        Effect.forkChild
      )
      yield* Deferred.await(started)
      assert.strictEqual((yield* call(server, "POST", `/api/sessions/${id}/cancel`, { body: {} })).status, 202)
      yield* Deferred.succeed(gate, undefined)
      assert.deepInclude((yield* Fiber.join(waiting)).json, { error: "TurnCancelled", level: "graceful" })
    }))

  it.live("an approval is answered through its own session's URL, and refused through another's", () =>
    Effect.gen(function*() {
      const server = yield* serve({
        script: () => [Testing.approval({ prompt: "Deploy?", timeout: "1 minute" })]
      })
      const id = yield* createSession(server)
      const other = yield* createSession(server)
      const events = yield* connect(server, "GET", `/api/sessions/${id}/events?after=0`)
      const waiting = yield* call(server, "POST", `/api/sessions/${id}/messages`, { body: { text: "ship it" } }).pipe(
        Effect.forkChild
      )
      const [required] = (yield* readUntil(events, (message) => message.event === "approval:required")).slice(-1)
      const requestId = json(required).requestId as string
      const pending = yield* call(server, "GET", `/api/sessions/${id}/approvals`)
      assert.deepStrictEqual(pending.array.map((request) => [request.requestId, request.prompt]), [
        [requestId, "Deploy?"]
      ])
      assert.deepStrictEqual((yield* call(server, "GET", `/api/sessions/${other}/approvals`)).array, [])
      const elsewhere = yield* call(server, "POST", `/api/sessions/${other}/approvals/${requestId}`, {
        body: { choice: "allow" }
      })
      assert.deepStrictEqual([elsewhere.status, elsewhere.json.error], [404, "ApprovalNotFound"])
      const unknown = yield* call(server, "POST", `/api/sessions/${id}/approvals/nope`, { body: { choice: "allow" } })
      assert.strictEqual(unknown.status, 404)
      const noChoice = yield* call(server, "POST", `/api/sessions/${id}/approvals/${requestId}`, { body: {} })
      assert.deepStrictEqual([noChoice.status, noChoice.json.field], [400, "payload.choice"])
      const answered = yield* call(server, "POST", `/api/sessions/${id}/approvals/${requestId}`, {
        body: { choice: "allow" }
      })
      assert.deepStrictEqual([answered.status, answered.json], [200, { resolved: true }])
      const again = yield* call(server, "POST", `/api/sessions/${id}/approvals/${requestId}`, {
        body: { choice: "deny" }
      })
      assert.strictEqual(again.status, 404, "answered once")
      assert.deepStrictEqual((yield* Fiber.join(waiting)).json, { reply: "approved:allow" })
      assert.deepStrictEqual((yield* call(server, "GET", `/api/sessions/${id}/approvals`)).array, [])
    }))
})

describe("SessionServer event streams", () => {
  it.live("events carry id, event and data; a dropped connection reconnects with Last-Event-ID and gets exactly the missed events", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const id = yield* createSession(server)
      const first = yield* connect(server, "GET", `/api/sessions/${id}/events?after=0`)
      assert.strictEqual(first.headers.get("content-type"), "text/event-stream")
      yield* call(server, "POST", `/api/sessions/${id}/messages`, { body: { text: "a" } })
      const before = yield* readUntil(first, turnEnd(1))
      assert.deepStrictEqual(before.map((message) => [message.id, message.event]), [
        ["1", "session:start"],
        ["2", "prompt:submit"],
        ["3", "prompt:complete"],
        ["4", "orchestrator:complete"]
      ])
      for (const message of before) {
        assert.deepInclude(json(message), { _tag: message.event, seq: Number(message.id), sessionId: id })
      }
      // the connection drops; the session goes on
      yield* first.close
      for (const text of ["b", "c"]) yield* call(server, "POST", `/api/sessions/${id}/messages`, { body: { text } })
      // the header wins over the stale `after` in the URL, as when EventSource reconnects
      const again = yield* connect(server, "GET", `/api/sessions/${id}/events?after=0`, {
        headers: { "last-event-id": before[before.length - 1].id! }
      })
      const missed = yield* readUntil(again, turnEnd(3))
      assert.deepStrictEqual(missed.map((message) => Number(message.id)), [5, 6, 7, 8, 9, 10], "no gap, no duplicate")
      assert.deepStrictEqual(missed.filter((message) => message.event === "prompt:submit").map((m) => json(m).prompt), [
        "b",
        "c"
      ])
      // and new events keep coming on the same connection
      yield* call(server, "POST", `/api/sessions/${id}/messages`, { body: { text: "d" } })
      assert.strictEqual((yield* again.nextEvent)?.id, "11")
    }))

  it.live("a cursor the replay window no longer holds is a 410 with the oldest available sequence number", () =>
    Effect.gen(function*() {
      const server = yield* serve({ backend: { replayWindow: 4 } })
      const id = yield* createSession(server)
      for (const text of ["a", "b", "c"]) {
        yield* call(server, "POST", `/api/sessions/${id}/messages`, { body: { text } })
      }
      // 10 events were published; the window keeps #7 … #10
      const gone = yield* call(server, "GET", `/api/sessions/${id}/events?after=2`)
      assert.strictEqual(gone.status, 410)
      assert.deepInclude(gone.json, { error: "EventsUnavailable", oldestAvailable: 7 })
      const header = yield* call(server, "GET", `/api/sessions/${id}/events`, { headers: { "last-event-id": "5" } })
      assert.deepInclude(header.json, { error: "EventsUnavailable", oldestAvailable: 7 })
      const kept = yield* connect(server, "GET", `/api/sessions/${id}/events?after=6`)
      assert.strictEqual(kept.status, 200)
      const replayed = yield* readUntil(kept, turnEnd(3))
      assert.deepStrictEqual(replayed.map((message) => message.id), ["7", "8", "9", "10"])
    }))

  it.live("execute streams exactly one turn's events and ends with it", () =>
    Effect.gen(function*() {
      const server = yield* serve({ script: (prompt) => [Testing.stream(["Hel", "lo ", prompt])] })
      const id = yield* createSession(server)
      yield* call(server, "POST", `/api/sessions/${id}/messages`, { body: { text: "earlier" } })
      const turn = yield* connect(server, "POST", `/api/sessions/${id}/execute`, { body: { text: "you" } })
      assert.strictEqual(turn.status, 200)
      const events = yield* readUntil(turn, () => false)
      assert.deepStrictEqual(events.map((message) => message.event), [
        "prompt:submit",
        "content_block:start",
        "content_block:delta",
        "content_block:delta",
        "content_block:delta",
        "content_block:end",
        "prompt:complete",
        "orchestrator:complete"
      ])
      assert.isTrue(events.every((message) => json(message).turn === undefined || json(message).turn === 2))
      assert.deepStrictEqual(events.filter((m) => m.event === "content_block:delta").map((m) => json(m).delta), [
        "Hel",
        "lo ",
        "you"
      ])
      assert.strictEqual(json(events[events.length - 2]).response, "Hello you")
      assert.isUndefined(yield* turn.next, "the stream ends with the turn")
    }))

  it.live("a turn that fails after it started ends its stream with the failure event", () =>
    Effect.gen(function*() {
      const server = yield* serve({
        script: () => [Testing.stream(["partial"]), Testing.fail(new Error("engine broke"))]
      })
      const id = yield* createSession(server)
      const turn = yield* connect(server, "POST", `/api/sessions/${id}/execute`, { body: { text: "go" } })
      assert.strictEqual(turn.status, 200)
      const events = yield* readUntil(turn, () => false)
      const last = events[events.length - 1]
      assert.strictEqual(last.event, "effect/http-api/stream/failure")
      assert.include(last.data, "\"error\":\"TurnFailed\"")
      assert.include(last.data, "engine broke")
      assert.includeMembers(events.map((message) => message.event), ["prompt:submit", "orchestrator:complete"])
    }))

  it.effect("an idle stream gets a heartbeat comment every 15 seconds of the Clock", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const id = yield* createSession(server)
      const events = yield* connect(server, "GET", `/api/sessions/${id}/events`)
      assert.deepStrictEqual(yield* events.next, { comment: "connected" })
      const next = yield* events.next.pipe(Effect.forkChild({ startImmediately: true }))
      let adjusted = 0
      // advance the clock until the heartbeat shows (the server may not have armed its timer yet)
      while (next.pollUnsafe() === undefined) {
        yield* TestClock.adjust("15 seconds")
        adjusted += 15
        yield* TestClock.withLive(Effect.sleep("20 millis"))
        assert.isBelow(adjusted, 15 * 50, "a heartbeat must come")
      }
      assert.deepStrictEqual(yield* Fiber.join(next), { comment: "heartbeat" })
      // heartbeats never get in the way of events
      yield* call(server, "POST", `/api/sessions/${id}/messages`, { body: { text: "hi" } })
      assert.strictEqual((yield* events.nextEvent)?.event, "prompt:submit")
    }))
})

describe("SessionServer OpenAPI and clients", () => {
  it.live("the OpenAPI document describes every route, behind the token", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const document = yield* call(server, "GET", "/api/openapi.json")
      assert.strictEqual(document.status, 200)
      const paths = Object.keys(document.json.paths as Record<string, unknown>).sort()
      assert.deepStrictEqual(paths, [
        "/api/health",
        "/api/openapi.json",
        "/api/sessions",
        "/api/sessions/{id}",
        "/api/sessions/{id}/approvals",
        "/api/sessions/{id}/approvals/{requestId}",
        "/api/sessions/{id}/cancel",
        "/api/sessions/{id}/events",
        "/api/sessions/{id}/execute",
        "/api/sessions/{id}/messages",
        "/api/sessions/{id}/resume",
        "/api/sessions/{id}/transcript",
        "/api/stored-sessions"
      ])
      assert.strictEqual((yield* call(server, "GET", "/api/openapi.json", { token: null })).status, 401)
    }))

  it.live("a client derived from SessionApi.Api talks to the server, typed failures included", () =>
    Effect.gen(function*() {
      const server = yield* serve({
        script: (prompt) => prompt === "boom" ? [Testing.stream(["x"]), Testing.fail("no")] : [Testing.reply(prompt)]
      })
      const client = yield* HttpApiClient.make(SessionApi.Api, {
        baseUrl: server.url,
        transformClient: HttpClient.mapRequest(HttpClientRequest.bearerToken(server.token))
      })
      const info = yield* client.sessions.create({ payload: { description: "typed" } })
      assert.strictEqual(info.description, "typed")
      const { reply } = yield* client.sessions.send({ params: { id: info.sessionId }, payload: { text: "ping" } })
      assert.strictEqual(reply, "ping")
      const events = yield* client.streams.execute({ params: { id: info.sessionId }, payload: { text: "pong" } }).pipe(
        Effect.flatMap(Stream.runCollect)
      )
      assert.deepStrictEqual(events.map((event) => event._tag), [
        "prompt:submit",
        "prompt:complete",
        "orchestrator:complete"
      ])
      const failed = yield* client.streams.execute({ params: { id: info.sessionId }, payload: { text: "boom" } }).pipe(
        Effect.flatMap(Stream.runCollect),
        Effect.exit
      )
      assert.isTrue(Exit.isFailure(failed))
      const error = Exit.isFailure(failed) ? failed.cause.reasons.find((reason) => reason._tag === "Fail") : undefined
      assert.isTrue(error?._tag === "Fail" && error.error instanceof SessionApi.BadGateway)
      const missing = yield* client.sessions.get({ params: { id: "nope" } }).pipe(Effect.flip)
      assert.isTrue(missing instanceof SessionApi.NotFound && missing.error === "SessionNotFound")
    }).pipe(Effect.provide(FetchHttpClient.layer)))
})

describe("SessionServer access token", () => {
  const withoutEnv = Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env: {} }))

  it.effect("is generated into <dataDir>/token (0600, folder 0700) on the first start and reused afterwards", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const dataDir = path.join(yield* fs.makeTempDirectoryScoped(), "data")
      const first = yield* SessionServer.resolveAccessToken(dataDir).pipe(withoutEnv)
      const token = Redacted.value(first)
      assert.match(token, /^[A-Za-z0-9_-]{43}$/, "32 random bytes, base64url")
      assert.strictEqual(String(first), "<redacted>", "never shown")
      const file = path.join(dataDir, "token")
      assert.strictEqual((yield* fs.readFileString(file)).trim(), token)
      assert.strictEqual((yield* fs.stat(file)).mode & 0o777, 0o600)
      assert.strictEqual((yield* fs.stat(dataDir)).mode & 0o777, 0o700)
      const second = yield* SessionServer.resolveAccessToken(dataDir).pipe(withoutEnv)
      assert.strictEqual(Redacted.value(second), token, "reused on the next start")
      // ESB_TOKEN wins over the file
      const fromEnv = yield* SessionServer.resolveAccessToken(dataDir).pipe(
        Effect.provideService(
          ConfigProvider.ConfigProvider,
          ConfigProvider.fromEnv({ env: { ESB_TOKEN: "env-token" } })
        )
      )
      assert.strictEqual(Redacted.value(fromEnv), "env-token")
    }).pipe(Effect.provide([NodeFileSystem.layer, NodePath.layer])))

  it.live("layerWithAccessToken serves with the stored token", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dataDir = yield* fs.makeTempDirectoryScoped()
      const context = yield* Layer.build(
        SessionServer.layerWithAccessToken({ dataDir, port: 0 }).pipe(Layer.provide(Testing.layer()))
      ).pipe(withoutEnv)
      const url = yield* SessionServer.url.pipe(Effect.provide(context))
      const token = Redacted.value(yield* Effect.service(SessionServer.AccessToken).pipe(Effect.provide(context)))
      assert.strictEqual((yield* fs.readFileString(`${dataDir}/token`)).trim(), token)
      const server = { url, token }
      assert.strictEqual((yield* call(server, "GET", "/api/sessions")).status, 200)
      assert.strictEqual((yield* call(server, "GET", "/api/sessions", { token: "guess" })).status, 401)
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})

describe("SessionServer for the web page", () => {
  it.live("stored-sessions lists past sessions (live or not) and transcript returns their conversation", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const first = yield* createSession(server, { description: "first" })
      const second = yield* createSession(server, { workingDir: "/srv/app" })
      assert.strictEqual(
        (yield* call(server, "POST", `/api/sessions/${first}/messages`, { body: { text: "hi" } })).status,
        200
      )
      yield* call(server, "DELETE", `/api/sessions/${second}`)
      const stored = yield* call(server, "GET", "/api/stored-sessions")
      assert.strictEqual(stored.status, 200, stored.text)
      const byId = new Map(stored.array.map((s) => [s.sessionId, s]))
      assert.strictEqual(byId.get(first)?.live, true)
      assert.strictEqual(byId.get(first)?.description, "first")
      assert.strictEqual(byId.get(second)?.ended, true)
      assert.strictEqual(byId.get(second)?.workingDir, "/srv/app")
      const transcript = yield* call(server, "GET", `/api/sessions/${first}/transcript`)
      assert.deepStrictEqual(transcript.json.messages, [{ role: "user", content: "hi" }, {
        role: "assistant",
        content: "hi"
      }])
      const unknown = yield* call(server, "GET", "/api/sessions/00000000-0000-0000-0000-000000000000/transcript")
      assert.strictEqual(unknown.status, 404)
      assert.strictEqual((yield* call(server, "GET", "/api/stored-sessions", { token: null })).status, 401)
    }))

  it.live("the chat page is served at / without a token, with a strict content policy", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const page = yield* call(server, "GET", "/", { token: null })
      assert.strictEqual(page.status, 200)
      assert.include(page.headers.get("content-type") ?? "", "text/html")
      assert.include(page.headers.get("content-security-policy") ?? "", "frame-ancestors 'none'")
      assert.include(page.text, "<title>effect-session-backend</title>")
      assert.notInclude(page.text, server.token, "the page holds no secret")
    }))
})
