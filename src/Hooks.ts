/**
 * Hooks: Effect handlers an application registers on the orchestrator's hook
 * points. A handler sees what is about to happen and answers: continue, deny,
 * modify it, inject context for the model, or ask the user first.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"
import type { Scope } from "effect"
import type { ApprovalRequest, TurnContext } from "./AgentSession.ts"
import * as SessionEvent from "./SessionEvent.ts"
import type { SessionId } from "./SessionId.ts"

/** Where the orchestrator runs hooks. */
export type HookPoint = "prompt:submit" | "provider:request" | "tool:pre" | "tool:post"

/** What a handler is shown. `data` is what a `modify` replaces: the prompt, the tool's arguments or its result. */
export interface HookInput {
  readonly point: HookPoint
  readonly sessionId: SessionId
  readonly turn: number
  /** The tool, at `tool:pre` and `tool:post`. */
  readonly tool?: string | undefined
  readonly toolCallId?: string | undefined
  /** The prompt (`prompt:submit`), the arguments (`tool:pre`), the result (`tool:post`); nothing at `provider:request`. */
  readonly data: unknown
  /** At `tool:post`: whether the tool failed. */
  readonly isFailure?: boolean | undefined
}

/** Something to show the user beside the result (a `display:message` event). */
export interface Display {
  readonly message: string
  readonly level?: "info" | "warning" | "error" | undefined
}

/** A handler's answer. Every variant may carry a `display` for the user. */
export type HookResult =
  | { readonly action: "continue"; readonly display?: Display | undefined }
  | { readonly action: "deny"; readonly reason: string; readonly display?: Display | undefined }
  | { readonly action: "modify"; readonly data: unknown; readonly display?: Display | undefined }
  | { readonly action: "inject_context"; readonly message: string; readonly display?: Display | undefined }
  | ({ readonly action: "ask_user"; readonly display?: Display | undefined } & ApprovalRequest)

/** A handler registration. */
export interface Registration {
  /** Names the handler; registering the same name again for the same point and session replaces it. */
  readonly name: string
  readonly point: HookPoint
  readonly handler: (input: HookInput) => Effect.Effect<HookResult, unknown>
  /** Lower runs first; default 0. Equal priorities run in registration order. */
  readonly priority?: number | undefined
  /** Only this session's turns; default every session. */
  readonly sessionId?: SessionId | undefined
}

/** What the handlers decided, together. */
export interface HookOutcome {
  /** Set when a handler denied (or the user said no to an `ask_user`); later handlers did not run. */
  readonly denied: string | undefined
  /** The data after every `modify`. */
  readonly data: unknown
  /** Context to give the model, in handler order. */
  readonly injected: ReadonlyArray<string>
}

/** The registry of hook handlers. */
export class Hooks extends Context.Service<Hooks, {
  /** Adds a handler; the effect it returns removes it again (only that registration, not a later replacement). */
  readonly register: (registration: Registration) => Effect.Effect<Effect.Effect<void>>
  /**
   * Runs the handlers for `input.point` in priority order. A handler that
   * fails denies at `tool:pre` (fail closed) and is skipped elsewhere; either
   * way the user is shown why.
   */
  readonly run: (input: HookInput, turn: TurnContext) => Effect.Effect<HookOutcome>
}>()("effect-session-backend/Hooks") {}

interface Entry {
  readonly key: string
  readonly order: number
  readonly registration: Registration
}

const keyOf = (registration: Registration): string =>
  `${registration.point}\u0000${registration.sessionId ?? "*"}\u0000${registration.name}`

/** Builds an empty registry. */
export const make: Effect.Effect<Hooks["Service"]> = Effect.sync(() => {
  const entries = new Map<string, Entry>()
  let order = 0
  const handlersFor = (input: HookInput): ReadonlyArray<Registration> =>
    Array.from(entries.values())
      .filter(({ registration }) =>
        registration.point === input.point &&
        (registration.sessionId === undefined || registration.sessionId === input.sessionId)
      )
      .sort((a, b) => (a.registration.priority ?? 0) - (b.registration.priority ?? 0) || a.order - b.order)
      .map((entry) => entry.registration)

  const display = (turn: TurnContext, source: string, shown: Display | undefined) =>
    shown === undefined
      ? Effect.void
      : turn.emit(SessionEvent.DisplayMessage, { message: shown.message, level: shown.level ?? "info", source })

  return Hooks.of({
    register: (registration) =>
      Effect.sync(() => {
        const entry: Entry = { key: keyOf(registration), order: order++, registration }
        entries.set(entry.key, entry)
        return Effect.sync(() => {
          if (entries.get(entry.key) === entry) entries.delete(entry.key)
        })
      }),
    run: (input, turn) =>
      Effect.gen(function*() {
        let data = input.data
        const injected: Array<string> = []
        for (const registration of handlersFor(input)) {
          const source = `hook:${registration.name}`
          const result = yield* Effect.result(registration.handler({ ...input, data }))
          if (result._tag === "Failure") {
            const failClosed = input.point === "tool:pre"
            yield* display(turn, source, {
              message: `hook ${registration.name} failed${failClosed ? ", so the tool call is denied" : ""}: ${
                String(result.failure)
              }`,
              level: failClosed ? "error" : "warning"
            })
            if (failClosed) return { denied: `hook ${registration.name} failed`, data, injected }
            continue
          }
          const answer = result.success
          yield* display(turn, source, answer.display)
          switch (answer.action) {
            case "continue":
              break
            case "deny":
              return { denied: answer.reason, data, injected }
            case "modify":
              data = answer.data
              break
            case "inject_context":
              injected.push(answer.message)
              break
            case "ask_user": {
              const decision = yield* turn.requestApproval(answer)
              if (!decision.approved) {
                return {
                  denied: `the user said ${decision.timedOut ? "nothing in time" : decision.choice}`,
                  data,
                  injected
                }
              }
              break
            }
          }
        }
        return { denied: undefined, data, injected }
      })
  })
})

/** An empty registry. */
export const layer: Layer.Layer<Hooks> = Layer.effect(Hooks, make)

/** Registers a handler with the registry in context; returns the effect that removes it. */
export const register = (registration: Registration): Effect.Effect<Effect.Effect<void>, never, Hooks> =>
  Effect.flatMap(Hooks, (hooks) => hooks.register(registration))

/** Registers a handler for the life of the current scope. */
export const registerScoped = (
  registration: Registration
): Effect.Effect<void, never, Hooks | Scope.Scope> =>
  Effect.acquireRelease(register(registration), (unregister) => unregister).pipe(Effect.asVoid)
