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
  /** The backend's clock, which stamps every event. */
  readonly clock: Clock.Clock
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

/** The turn being run; it is also the engine's `TurnContext`. */
class RunningTurn implements AgentSession.TurnContext {
  /** Unset while the engine runs the turn's first synchronous part. */
  fiber: Fiber.Fiber<string, unknown> | undefined = undefined
  cancel: CancelLevel | undefined = undefined
  /** Completed once the sender has its outcome; made only when someone waits for it. */
  settled: Deferred.Deferred<void> | undefined = undefined
  readonly sessionId: SessionId
  readonly turn: number
  readonly boundary: Effect.Effect<void, TurnCancelled>

  constructor(readonly actor: SessionActor, readonly envelope: Envelope) {
    this.sessionId = actor.sessionId
    this.turn = envelope.turn
    this.boundary = Effect.suspend(() =>
      this.cancel === undefined
        ? Effect.void
        : Effect.fail(new TurnCancelled({ sessionId: this.sessionId, level: this.cancel }))
    )
  }

  readonly emit = <C extends SessionEvent.Constructor>(event: C, fields: SessionEvent.Fields<C>) =>
    this.actor.emit(event, fields)

  readonly requestApproval = (request: AgentSession.ApprovalRequest) => this.actor.requestApproval(request)

  /** Waits until the sender has its outcome. */
  get stopped(): Effect.Effect<void> {
    this.settled ??= Deferred.makeUnsafe<void>()
    return Deferred.await(this.settled)
  }
}

/** A pending approval request and the answer it waits for. */
interface PendingApproval {
  readonly event: SessionEvent.ApprovalRequired
  readonly answer: Deferred.Deferred<string>
}

/**
 * One live session: a bounded mailbox, one worker fiber that runs its turns
 * one at a time, the event log, and the pending approvals.
 */
export class SessionActor {
  status: "open" | "closing" | "closed" = "open"
  /** Why this session is going away, once it is. */
  endReason: EndReason = "ended"
  current: RunningTurn | undefined = undefined
  worker: Fiber.Fiber<never> | undefined = undefined
  /** Made on the first request, so an idle session stays small. */
  approvals: Map<string, PendingApproval> | undefined = undefined
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

  /** Publishes an event stamped with the Clock's time, now. */
  publish<C extends SessionEvent.Constructor>(event: C, fields: SessionEvent.Fields<C>): SessionEvent.SessionEvent {
    return this.log.publish(event, fields, this.config.clock.currentTimeMillisUnsafe())
  }

  /** Publishes an event stamped with the Clock's time. */
  emit<C extends SessionEvent.Constructor>(event: C, fields: SessionEvent.Fields<C>): Effect.Effect<void> {
    return Effect.sync(() => void this.publish(event, fields))
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
    const running = new RunningTurn(this, envelope)
    this.current = running
    this.publish(SessionEvent.PromptSubmit, { prompt: envelope.prompt, turn: envelope.turn })
    return Effect.flatMap(
      Effect.forkChild(this.agent.runTurn(envelope.prompt, running), { startImmediately: true }),
      (fiber) => {
        running.fiber = fiber
        // an immediate cancel may have come while the turn ran its first synchronous part
        const awaited = running.cancel === "immediate"
          ? Effect.andThen(Fiber.interrupt(fiber), Fiber.await(fiber))
          : Fiber.await(fiber)
        return Effect.matchCauseEffect(restore(awaited), {
          onSuccess: (exit) => Effect.sync(() => this.settle(running, exit)),
          // the worker itself is interrupted only when the session ends or the backend stops
          onFailure: () =>
            Effect.andThen(
              Fiber.interrupt(fiber),
              Effect.sync(() =>
                this.settle(running, Exit.fail(new SessionEnded({ sessionId: this.sessionId, reason: this.endReason })))
              )
            )
        })
      }
    )
  }

  /** Tells the sender how its turn ended, with the events that say so. */
  private settle(running: RunningTurn, exit: Exit.Exit<string, unknown>): void {
    const { envelope } = running
    const turn = envelope.turn
    if (this.current === running) this.current = undefined
    if (Exit.isSuccess(exit)) {
      this.publish(SessionEvent.PromptComplete, { response: exit.value, turn })
      this.publish(SessionEvent.OrchestratorComplete, { status: "completed", turn })
      Deferred.doneUnsafe(envelope.reply, exit as Exit.Exit<string>)
    } else {
      const error = this.failureOf(running, exit.cause)
      if (error._tag === "TurnCancelled") this.publish(SessionEvent.CancelCompleted, { level: error.level })
      this.publish(SessionEvent.OrchestratorComplete, {
        status: error._tag === "TurnFailed" ? "failed" : "cancelled",
        turn
      })
      Deferred.doneUnsafe(envelope.reply, Exit.fail(error))
    }
    if (running.settled !== undefined) Deferred.doneUnsafe(running.settled, Exit.void)
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
      if (running.cancel === "immediate") return running.stopped
      const effective: CancelLevel = running.cancel !== undefined ? "immediate" : level
      running.cancel = effective
      this.publish(SessionEvent.CancelRequested, { level: effective })
      if (effective === "graceful") return Effect.void
      return running.fiber !== undefined
        ? Effect.andThen(Fiber.interrupt(running.fiber), running.stopped)
        : running.stopped
    })
  }

  requestApproval(request: AgentSession.ApprovalRequest): Effect.Effect<AgentSession.ApprovalDecision> {
    const actor = this
    return Effect.gen(function*() {
      const requestId = globalThis.crypto.randomUUID()
      const options = request.options ?? ["allow", "deny"]
      const fallback = request.default ?? "deny"
      const timeout = request.timeout === undefined ? actor.config.approvalTimeout : Duration.fromInputUnsafe(request.timeout)
      const answer = Deferred.makeUnsafe<string>()
      const event = actor.publish(SessionEvent.ApprovalRequired, {
        requestId,
        prompt: request.prompt,
        options,
        timeoutMillis: Duration.toMillis(timeout),
        default: fallback
      }) as SessionEvent.ApprovalRequired
      actor.approvals ??= new Map()
      actor.approvals.set(requestId, { event, answer })
      const given = yield* Deferred.await(answer).pipe(
        Effect.timeoutOption(timeout),
        Effect.ensuring(Effect.sync(() => actor.approvals?.delete(requestId)))
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
    const pending = this.approvals?.get(requestId)
    if (pending === undefined) return false
    this.approvals?.delete(requestId)
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
      actor.approvals = undefined
      yield* Scope.close(actor.scope, Exit.void)
      actor.status = "closed"
      onClosed()
      yield* Deferred.succeed(actor.closed, undefined)
    })
  }
}
