/**
 * The `delegate` tool: runs a sub-agent's turn inside the parent's turn. The
 * child shares the parent's working directory, approvals (asked through the
 * parent's clients) and display, and its cancel: an immediate cancel of the
 * parent interrupts the child with it; a graceful one stops the child at its
 * next step boundary.
 */
import { Effect, Schema } from "effect"
import type { AgentSession, SessionHistory, TurnContext } from "../AgentSession.ts"
import type { Options, SubAgent } from "../Orchestrator.ts"
import * as SessionEvent from "../SessionEvent.ts"
import type { Message } from "../Transcript.ts"

const DelegateParams = Schema.Struct({ agent: Schema.String, task: Schema.String })
const decodeParams = Schema.decodeUnknownEffect(DelegateParams)

let children = 0

const memoryHistory = (task: string): SessionHistory => {
  const messages: Array<Message> = [{ role: "user", content: task }]
  return {
    messages: Effect.sync(() => messages.slice()),
    append: (added) => Effect.sync(() => void messages.push(...added))
  }
}

/** Runs `params.task` on the named sub-agent; answers its reply. */
export const runDelegate = (
  agents: Readonly<Record<string, SubAgent>>,
  params: unknown,
  parent: TurnContext,
  make: (options: Options) => AgentSession
): Effect.Effect<string, unknown> =>
  Effect.gen(function*() {
    const { agent, task } = yield* decodeParams(params)
    const definition = agents[agent]
    if (definition === undefined) {
      return yield* Effect.fail(new Error(`no agent named '${agent}'; agents: ${Object.keys(agents).join(", ")}`))
    }
    const childSessionId = `${parent.sessionId}-${agent}-${++children}`
    const child: TurnContext = {
      sessionId: parent.sessionId,
      turn: parent.turn,
      // the child's own stream stays inside it; what a person must see reaches the parent's clients
      emit: (event, fields) => event === SessionEvent.DisplayMessage ? parent.emit(event, fields) : Effect.void,
      boundary: parent.boundary,
      requestApproval: (request) => parent.requestApproval({ ...request, prompt: `[${agent}] ${request.prompt}` }),
      history: memoryHistory(task),
      checkpoint: Effect.void
    }
    yield* parent.emit(SessionEvent.DelegateAgentSpawned, { agent, childSessionId, task })
    return yield* make(definition.options).runTurn(task, child).pipe(
      Effect.tap((response) => parent.emit(SessionEvent.DelegateAgentCompleted, { agent, childSessionId, response })),
      Effect.tapCause((cause) =>
        parent.emit(SessionEvent.DelegateError, {
          agent,
          childSessionId,
          error: cause.reasons.every((reason) => reason._tag === "Interrupt") ? "cancelled" : String(cause)
        })
      )
    )
  })
