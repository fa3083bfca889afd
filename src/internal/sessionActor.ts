import { Cause, Clock, Deferred, Duration, Effect, Exit, Fiber, Option, Queue, Scope } from "effect"
import * as AgentSession from "../AgentSession.ts"
import type { CancelLevel, EndReason } from "../SessionError.ts"
import { MailboxFull, SessionEnded, TurnCancelled, TurnFailed } from "../SessionError.ts"
import * as SessionEvent from "../SessionEvent.ts"
import type { SessionId } from "../SessionId.ts"
import type { SessionInfo } from "../SessionInfo.ts"
import { EventLog } from "./eventLog.ts"

/** Tunables of every actor, resolved from the backend's options. */
export interface ActorConfig {
  readonly mailboxCapacity: number
  readonly replayWindow: number
  readonly approvalTimeout: Duration.Duration
}

/** The ways one turn can fail its sender. */
export type TurnError = TurnCancelled | TurnFailed | SessionEnded

/** A message waiting in the mailbox, with its sender's reply. */
export interface Envelope {
  readonly prompt: string
  readonly turn: number
  readonly reply: Deferred.Deferred<string, TurnError>
}

/** The turn being run. */
interface RunningTurn {
  readonly envelope: Envelope
  /** Unset while the engine runs the turn's first synchronous part. */
  fiber: Fiber.Fiber<string, unknown> | undefined
  cancel: CancelLevel | undefined
  /** Completed once the sender has its outcome. */
  readonly settled: Deferred.Deferred<void>
}

/**
 * One live session: a bounded mailbox, one worker fiber that runs its turns
 * one at a time, the event log, and the pending approvals.
 */
export class SessionActor {
  status: "open" | "closing" | "closed" = "open"
  current: RunningTurn | undefined = undefined
  worker: Fiber.Fiber<never> | undefined = undefined
  readonly approvals = new Map<string, { readonly event: SessionEvent.ApprovalRequired; readonly answer: Deferred.Deferred<string> }>()
  readonly closed = Deferred.makeUnsafe<void>()
  private turns = 0

  constructor(
    readonly info: SessionInfo,
    readonly agent: AgentSession.AgentSession,
    readonly scope: Scope.Closeable,
    readonly mailbox: Queue.Queue<Envelope>,
    readonly log: EventLog,
    readonly config: ActorConfig
  ) {}

  get sessionId(): SessionId {
    return this.info.sessionId as SessionId
  }

  /** Publishes an event stamped with the Clock's time. */
  emit<C extends SessionEvent.Constructor>(event: C, fields: SessionEvent.Fields<C>): Effect.Effect<void> {
    return Clock.currentTimeMillis.pipe(Effect.map((now) => void this.log.publish(event, fields, now)))
  }

  /** Queues a prompt; the effect waits for its reply. Fails at once when full or ending. */
  send(prompt: string): Effect.Effect<string, TurnError | MailboxFull> {
    const queued = this.offer(prompt)
    return Effect.isEffect(queued) ? queued : Deferred.await(queued.reply)
  }

  /** Queues a prompt and says which turn number it got; the reply comes later. */
  offer(prompt: string): Envelope | Effect.Effect<never, SessionEnded | MailboxFull> {
    if (this.status !== "open") return Effect.fail(new SessionEnded({ sessionId: this.sessionId, reason: this.endReason }))
    const envelope: Envelope = { prompt, turn: this.turns + 1, reply: Deferred.makeUnsafe<string, TurnError>() }
    if (!Queue.offerUnsafe(this.mailbox, envelope)) {
      return Effect.fail(new MailboxFull({ sessionId: this.sessionId, capacity: this.config.mailboxCapacity }))
    }
    this.turns = envelope.turn
    return envelope
  }

  /** The worker: takes one message at a time and runs its turn; never yields between messages. */
  readonly serve: Effect.Effect<never> = Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(restore(Queue.take(this.mailbox)), (envelope) => this.runTurn(envelope, restore))
  ).pipe(Effect.forever({ disableYield: true }))

  private runTurn(
    envelope: Envelope,
    restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  ): Effect.Effect<void> {
    const running: RunningTurn = { envelope, fiber: undefined, cancel: undefined, settled: Deferred.makeUnsafe() }
    this.current = running
    const context: AgentSession.TurnContext = {
      sessionId: this.sessionId,
      turn: envelope.turn,
      emit: (event, fields) => this.emit(event, fields),
      boundary: Effect.suspend(() =>
        running.cancel === undefined
          ? Effect.void
          : Effect.fail(new TurnCancelled({ sessionId: this.sessionId, level: running.cancel }))
      ),
      requestApproval: (request) => this.requestApproval(request)
    }
    return this.emit(SessionEvent.PromptSubmit, { prompt: envelope.prompt, turn: envelope.turn }).pipe(
      Effect.andThen(Effect.forkChild(this.agent.runTurn(envelope.prompt, context), { startImmediately: true })),
      Effect.flatMap((fiber) => {
        running.fiber = fiber
        // an immediate cancel that came while the turn started synchronously
        const cancelled = running.cancel === "immediate" ? Fiber.interrupt(fiber) : Effect.void
        return restore(Effect.andThen(cancelled, Fiber.await(fiber))).pipe(
          // the worker itself is interrupted only when the session ends or the backend stops
          Effect.onInterrupt(() =>
            Fiber.interrupt(fiber).pipe(
              Effect.andThen(this.settle(running, Exit.fail(new SessionEnded({ sessionId: this.sessionId, reason: this.endReason }))))
            )
          ),
          Effect.flatMap((exit) => this.settle(running, exit))
        )
      })
    )
  }

  /** Why this session is going away, once it is. */
  endReason: EndReason = "ended"

  private settle(running: RunningTurn, exit: Exit.Exit<string, unknown>): Effect.Effect<void> {
    return this.reply(running, exit).pipe(Effect.andThen(Deferred.succeed(running.settled, undefined)))
  }

  private reply(running: RunningTurn, exit: Exit.Exit<string, unknown>): Effect.Effect<unknown> {
    const { envelope } = running
    if (this.current === running) this.current = undefined
    const turn = envelope.turn
    if (Exit.isSuccess(exit)) {
      return this.emit(SessionEvent.PromptComplete, { response: exit.value, turn }).pipe(
        Effect.andThen(this.emit(SessionEvent.OrchestratorComplete, { status: "completed", turn })),
        Effect.andThen(Deferred.succeed(envelope.reply, exit.value))
      )
    }
    const error = this.failureOf(running, exit.cause)
    if (error._tag === "TurnFailed") {
      return this.emit(SessionEvent.OrchestratorComplete, { status: "failed", turn }).pipe(
        Effect.andThen(Deferred.fail(envelope.reply, error))
      )
    }
    const cancelled = error._tag === "TurnCancelled"
      ? this.emit(SessionEvent.CancelCompleted, { level: error.level })
      : Effect.void
    return cancelled.pipe(
      Effect.andThen(this.emit(SessionEvent.OrchestratorComplete, { status: "cancelled", turn })),
      Effect.andThen(Deferred.fail(envelope.reply, error))
    )
  }

  private failureOf(running: RunningTurn, cause: Cause.Cause<unknown>): TurnError {
    const failure = Cause.findErrorOption(cause)
    if (Option.isSome(failure)) {
      const error = failure.value
      if (error instanceof TurnCancelled || error instanceof SessionEnded) return error
      return new TurnFailed({ sessionId: this.sessionId, cause: error })
    }
    if (Cause.hasInterruptsOnly(cause)) {
      return this.status === "open" || running.cancel !== undefined
        ? new TurnCancelled({ sessionId: this.sessionId, level: running.cancel ?? "immediate" })
        : new SessionEnded({ sessionId: this.sessionId, reason: this.endReason })
    }
    return new TurnFailed({ sessionId: this.sessionId, cause: Cause.squash(cause) })
  }

  /**
   * Cancels the running turn: graceful stops it at its next step boundary,
   * immediate (or a second cancel) interrupts its fiber and returns once it
   * has stopped. Idle: nothing happens.
   */
  cancel(level: CancelLevel): Effect.Effect<void> {
    return Effect.suspend(() => {
      const running = this.current
      if (running === undefined) return Effect.void
      const stopped = Deferred.await(running.settled)
      if (running.cancel === "immediate") return stopped
      const effective: CancelLevel = running.cancel !== undefined ? "immediate" : level
      running.cancel = effective
      const requested = this.emit(SessionEvent.CancelRequested, { level: effective })
      if (effective === "graceful") return requested
      return requested.pipe(
        Effect.andThen(running.fiber !== undefined ? Fiber.interrupt(running.fiber) : Effect.void),
        Effect.andThen(stopped)
      )
    })
  }

  private requestApproval(request: AgentSession.ApprovalRequest): Effect.Effect<AgentSession.ApprovalDecision> {
    const actor = this
    return Effect.gen(function*() {
      const requestId = globalThis.crypto.randomUUID()
      const options = request.options ?? ["allow", "deny"]
      const fallback = request.default ?? "deny"
      const timeout = request.timeout === undefined ? actor.config.approvalTimeout : Duration.fromInputUnsafe(request.timeout)
      const answer = Deferred.makeUnsafe<string>()
      const now = yield* Clock.currentTimeMillis
      const event = actor.log.publish(SessionEvent.ApprovalRequired, {
        requestId,
        prompt: request.prompt,
        options,
        timeoutMillis: Duration.toMillis(timeout),
        default: fallback
      }, now) as SessionEvent.ApprovalRequired
      actor.approvals.set(requestId, { event, answer })
      const given = yield* Deferred.await(answer).pipe(
        Effect.timeoutOption(timeout),
        Effect.ensuring(Effect.sync(() => actor.approvals.delete(requestId)))
      )
      const choice = Option.getOrElse(given, () => fallback)
      const approved = AgentSession.isAllowChoice(choice, options)
      yield* approved
        ? actor.emit(SessionEvent.ApprovalGranted, { requestId, choice })
        : actor.emit(SessionEvent.ApprovalDenied, { requestId, choice, reason: Option.isNone(given) ? "timeout" : "choice" })
      return { requestId, choice, approved, timedOut: Option.isNone(given) }
    })
  }

  /** Answers a pending approval of this session once; false for anything else. */
  resolveApproval(requestId: string, choice: string): boolean {
    const pending = this.approvals.get(requestId)
    if (pending === undefined) return false
    this.approvals.delete(requestId)
    return Deferred.doneUnsafe(pending.answer, Effect.succeed(choice))
  }

  /**
   * Ends the actor: stop accepting, fail what is queued, let the running turn
   * drain for up to `drain`, then interrupt it, close the session's scope and
   * the event log. Runs once; later calls wait for the first.
   */
  shutdown(reason: EndReason, drain: Duration.Duration, onClosed: () => void): Effect.Effect<void> {
    if (this.status !== "open") return Deferred.await(this.closed)
    this.status = "closing"
    this.endReason = reason
    const ended = new SessionEnded({ sessionId: this.sessionId, reason })
    const actor = this
    return Effect.gen(function*() {
      const queued = yield* Queue.clear(actor.mailbox)
      for (const envelope of queued) yield* Deferred.fail(envelope.reply, ended)
      const running = actor.current
      if (running?.fiber !== undefined) {
        yield* Fiber.await(running.fiber).pipe(Effect.timeoutOption(drain))
      }
      if (actor.worker !== undefined) yield* Fiber.interrupt(actor.worker)
      for (const envelope of yield* Queue.clear(actor.mailbox)) yield* Deferred.fail(envelope.reply, ended)
      yield* actor.emit(SessionEvent.SessionEnd, { reason })
      actor.log.close()
      actor.approvals.clear()
      yield* Scope.close(actor.scope, Exit.void)
      actor.status = "closed"
      onClosed()
      yield* Deferred.succeed(actor.closed, undefined)
    })
  }
}
