import { Cause, Clock, Context, Deferred, Duration, Effect, Exit, Fiber, Option, Scope } from "effect"
import * as AgentSession from "../AgentSession.ts"
import type { CancelLevel, EndReason } from "../SessionError.ts"
import { MailboxFull, SessionEnded, TurnCancelled, TurnFailed } from "../SessionError.ts"
import * as SessionEvent from "../SessionEvent.ts"
import type { SessionId } from "../SessionId.ts"
import type { SessionInfo } from "../SessionInfo.ts"
import type { EventLog } from "./eventLog.ts"
import type { History } from "./sessionHistory.ts"

/** What every actor shares, resolved once by the backend. */
export interface ActorConfig {
  /** The backend's services: turns run with these, whoever sent the message. */
  readonly context: Context.Context<never>
  /** The backend's clock, which stamps every event. */
  readonly clock: Clock.Clock
  readonly mailboxCapacity: number
  readonly approvalTimeout: Duration.Duration
}

/** Where an actor writes what is not the conversation. */
export interface ActorSink {
  /** Merges a patch into the session's metadata. */
  readonly metadata: (patch: Record<string, unknown>) => Effect.Effect<void, unknown>
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
  cancel: CancelLevel | undefined = undefined
  /** Completed once the sender has its outcome; made only when someone waits for it. */
  private settled: Deferred.Deferred<void> | undefined = undefined
  // the context's members are made on first use: a turn that never emits or asks allocates none
  private boundaryEffect: Effect.Effect<void, TurnCancelled> | undefined = undefined
  private emitFunction: AgentSession.TurnContext["emit"] | undefined = undefined
  private approvalFunction: AgentSession.TurnContext["requestApproval"] | undefined = undefined

  constructor(readonly actor: SessionActor, readonly envelope: Envelope) {}

  get sessionId(): SessionId {
    return this.actor.sessionId
  }

  get turn(): number {
    return this.envelope.turn
  }

  get boundary(): Effect.Effect<void, TurnCancelled> {
    return this.boundaryEffect ??= Effect.suspend(() =>
      this.cancel === undefined
        ? Effect.void
        : Effect.fail(new TurnCancelled({ sessionId: this.sessionId, level: this.cancel }))
    )
  }

  get emit(): AgentSession.TurnContext["emit"] {
    return this.emitFunction ??= (event, fields) => this.actor.emit(event, fields)
  }

  get history(): AgentSession.SessionHistory {
    return this.actor.history
  }

  get checkpoint(): Effect.Effect<void> {
    return this.actor.checkpoint
  }

  get requestApproval(): AgentSession.TurnContext["requestApproval"] {
    return this.approvalFunction ??= (request) => this.actor.requestApproval(request)
  }

  /** Waits until the sender has its outcome. */
  get stopped(): Effect.Effect<void> {
    this.settled ??= Deferred.makeUnsafe<void>()
    return Deferred.await(this.settled)
  }

  markSettled(): void {
    if (this.settled !== undefined) Deferred.doneUnsafe(this.settled, Exit.void)
  }
}

/** A pending approval request and the answer it waits for. */
interface PendingApproval {
  readonly event: SessionEvent.ApprovalRequired
  readonly answer: Deferred.Deferred<string>
}

/**
 * One live session: a bounded mailbox and a worker fiber that runs its turns
 * one at a time, in order. The worker exists while there is work: the first
 * message of an idle session starts it (in the session's scope, with the
 * backend's services), it runs turn after turn without yielding between them,
 * and it ends when the mailbox is empty, so an idle session holds no fiber.
 */
export class SessionActor {
  status: "open" | "closing" | "closed" = "open"
  /** Why this session is going away, once it is. */
  endReason: EndReason = "ended"
  current: RunningTurn | undefined = undefined
  /** The worker, while there is one. */
  private worker: Fiber.Fiber<void> | undefined = undefined
  private readonly mailbox: Array<Envelope> = []
  /** Made on the first request, so an idle session stays small. */
  approvals: Map<string, PendingApproval> | undefined = undefined
  readonly closed = Deferred.makeUnsafe<void>()
  private turns = 0
  /** Clock time of the last turn's end (or of the start); idle time is counted from it. */
  lastActive: number

  constructor(
    readonly info: SessionInfo,
    readonly agent: AgentSession.AgentSession,
    readonly scope: Scope.Closeable,
    readonly log: EventLog,
    readonly config: ActorConfig,
    readonly history: History<unknown>,
    readonly sink: ActorSink,
    /** Turns completed over the session's life, before this activation. */
    private completedTurns = 0
  ) {
    this.lastActive = config.clock.currentTimeMillisUnsafe()
  }

  /** Nothing running, queued, waiting for approval, or listening: the session may be released from memory. */
  get isIdle(): boolean {
    return this.status === "open" && !this.working && this.mailbox.length === 0 &&
      (this.approvals === undefined || this.approvals.size === 0) && this.log.subscribers === 0
  }

  get sessionId(): SessionId {
    return this.info.sessionId as SessionId
  }

  /** Writes what the engine added to the history; a failed write fails the turn. */
  readonly checkpoint: Effect.Effect<void> = Effect.suspend(() => this.history.flush).pipe(Effect.orDie)

  /** Publishes an event stamped with the Clock's time, now. */
  publish<C extends SessionEvent.Constructor>(event: C, fields: SessionEvent.Fields<C>): SessionEvent.SessionEvent {
    return this.log.publish(event, fields, this.config.clock.currentTimeMillisUnsafe())
  }

  /** Publishes an event stamped with the Clock's time. */
  emit<C extends SessionEvent.Constructor>(event: C, fields: SessionEvent.Fields<C>): Effect.Effect<void> {
    return Effect.sync(() => void this.publish(event, fields))
  }

  /** Queues a prompt and waits for its reply. Fails at once when the mailbox is full or the session ending. */
  send(prompt: string): Effect.Effect<string, TurnError | MailboxFull> {
    return Effect.suspend((): Effect.Effect<string, TurnError | MailboxFull> => {
      const envelope = this.enqueue(prompt)
      if (!("reply" in envelope)) return Effect.fail(envelope)
      const reply = Deferred.await(envelope.reply)
      return this.working ? reply : Effect.andThen(this.startWorker, reply)
    })
  }

  /** Queues a prompt, starting the worker if there is none; the reply comes in the envelope. */
  offer(prompt: string): Effect.Effect<Envelope, SessionEnded | MailboxFull> {
    return Effect.suspend(() => {
      const envelope = this.enqueue(prompt)
      if (!("reply" in envelope)) return Effect.fail(envelope)
      return this.working ? Effect.succeed(envelope) : Effect.as(this.startWorker, envelope)
    })
  }

  private enqueue(prompt: string): Envelope | SessionEnded | MailboxFull {
    if (this.status !== "open") return new SessionEnded({ sessionId: this.sessionId, reason: this.endReason })
    if (this.mailbox.length >= this.config.mailboxCapacity) {
      return new MailboxFull({ sessionId: this.sessionId, capacity: this.config.mailboxCapacity })
    }
    const envelope: Envelope = { prompt, turn: ++this.turns, reply: Deferred.makeUnsafe<string, TurnError>() }
    this.mailbox.push(envelope)
    return envelope
  }

  /** True from the moment a worker is asked for until it has stopped. */
  private working = false

  /** Starts the worker in the session's scope, with the backend's services; it runs at once, in this call. */
  private readonly startWorker: Effect.Effect<void> = Effect.suspend(() => {
    this.working = true
    return Effect.asVoid(
      Effect.forkIn(Effect.provideContext(this.work, this.config.context), this.scope, { startImmediately: true })
    )
  })

  private readonly work: Effect.Effect<void> = Effect.withFiber((fiber) => {
    this.worker = fiber as Fiber.Fiber<void>
    return Effect.onInterrupt(this.loop, () => Effect.sync(() => this.stopWorking()))
  })

  /** Runs queued turns until the mailbox is empty. */
  private readonly loop: Effect.Effect<void> = Effect.suspend(() => {
    if (this.status !== "open" || this.mailbox.length === 0) {
      this.stopWorking()
      return Effect.void
    }
    return Effect.flatMap(this.runTurn(this.mailbox.shift()!), () => this.loop)
  })

  private stopWorking(): void {
    this.working = false
    this.worker = undefined
  }

  private runTurn(envelope: Envelope): Effect.Effect<void> {
    const running = new RunningTurn(this, envelope)
    this.current = running
    this.publish(SessionEvent.PromptSubmit, { prompt: envelope.prompt, turn: envelope.turn })
    this.history.add({ role: "user", content: envelope.prompt })
    return Effect.onExit(
      // the prompt is written with the turn's first checkpoint or its end, whichever comes first
      this.agent.runTurn(envelope.prompt, running),
      // the worker is interrupted by an immediate cancel, an end, or a stop
      (exit) => this.finish(running, exit)
    ).pipe(Effect.exit, Effect.asVoid)
  }

  /**
   * Writes how the turn ended to the transcript (the answer; or, after a cancel
   * or a failure, a synthetic result for every unanswered tool call and a
   * closing note), then tells the sender. A write that fails fails the turn.
   */
  private finish(running: RunningTurn, exit: Exit.Exit<string, unknown>): Effect.Effect<void> {
    const outcome: Exit.Exit<string, TurnError> = Exit.isSuccess(exit)
      ? Exit.succeed(exit.value)
      : Exit.fail(this.failureOf(running, exit.cause))
    let written: Effect.Effect<void, unknown>
    if (Exit.isSuccess(outcome)) {
      this.history.add({ role: "assistant", content: outcome.value })
      written = this.history.flush
    } else {
      const cancelled = outcome.cause.reasons.some((r) => r._tag === "Fail" && r.error._tag === "TurnCancelled")
      written = this.history.repair("cancelled").pipe(
        Effect.andThen(Effect.suspend(() => {
          if (!cancelled) return Effect.void
          this.history.add({ role: "assistant", content: "The operation was cancelled." })
          return this.history.flush
        }))
      )
    }
    return written.pipe(
      Effect.andThen(this.countTurn),
      Effect.matchCause({
        onSuccess: () => this.settle(running, outcome),
        onFailure: (cause) =>
          this.settle(running, Exit.fail(new TurnFailed({ sessionId: this.sessionId, cause: Cause.squash(cause) })))
      })
    )
  }

  /** Metadata written at most once a second (the transcript is the record; `turn_count` is a summary). */
  private metadataWrittenAt = Number.NEGATIVE_INFINITY
  private metadataBehind = false

  private readonly countTurn: Effect.Effect<void, unknown> = Effect.suspend(() => {
    this.completedTurns++
    const now = this.config.clock.currentTimeMillisUnsafe()
    if (now - this.metadataWrittenAt < 1000) {
      this.metadataBehind = true
      return Effect.void
    }
    return this.writeMetadata(now)
  })

  private writeMetadata(now: number): Effect.Effect<void, unknown> {
    this.metadataWrittenAt = now
    this.metadataBehind = false
    return this.sink.metadata({ turn_count: this.completedTurns })
  }

  /** Writes the metadata that the once-a-second rule held back. */
  private readonly flushMetadata: Effect.Effect<void> = Effect.suspend(() =>
    this.metadataBehind ? this.writeMetadata(this.config.clock.currentTimeMillisUnsafe()) : Effect.void
  ).pipe(Effect.ignore)

  /** Tells the sender how its turn ended, with the events that say so. */
  private settle(running: RunningTurn, outcome: Exit.Exit<string, TurnError>): void {
    const { envelope } = running
    const turn = envelope.turn
    if (this.current === running) this.current = undefined
    if (Exit.isSuccess(outcome)) {
      this.publish(SessionEvent.PromptComplete, { response: outcome.value, turn })
      this.publish(SessionEvent.OrchestratorComplete, { status: "completed", turn })
    } else {
      const failure = outcome.cause.reasons[0]
      const error = failure?._tag === "Fail" ? failure.error : undefined
      if (error?._tag === "TurnCancelled") this.publish(SessionEvent.CancelCompleted, { level: error.level })
      this.publish(SessionEvent.OrchestratorComplete, {
        status: error?._tag === "TurnFailed" ? "failed" : "cancelled",
        turn
      })
    }
    this.lastActive = this.config.clock.currentTimeMillisUnsafe()
    Deferred.doneUnsafe(envelope.reply, outcome)
    running.markSettled()
  }

  private failureOf(running: RunningTurn, cause: Cause.Cause<unknown>): TurnError {
    const failure = Cause.findErrorOption(cause)
    if (Option.isSome(failure)) {
      const error = failure.value
      if (error instanceof TurnCancelled || error instanceof SessionEnded) return error
      return new TurnFailed({ sessionId: this.sessionId, cause: error })
    }
    if (Cause.hasInterruptsOnly(cause)) {
      return running.cancel !== undefined || this.status === "open"
        ? new TurnCancelled({ sessionId: this.sessionId, level: running.cancel ?? "immediate" })
        : new SessionEnded({ sessionId: this.sessionId, reason: this.endReason })
    }
    return new TurnFailed({ sessionId: this.sessionId, cause: Cause.squash(cause) })
  }

  /**
   * Cancels the running turn: graceful stops it at its next step boundary,
   * immediate (or a second cancel) interrupts the worker and returns once the
   * sender has its `TurnCancelled`; the messages queued behind it still run.
   * Idle: nothing happens.
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
      // the messages queued behind the cancelled turn get a new worker
      return Effect.andThen(this.interruptWorker, running.stopped).pipe(
        Effect.andThen(
          Effect.suspend(() =>
            !this.working && this.mailbox.length > 0 && this.status === "open" ? this.startWorker : Effect.void
          )
        )
      )
    })
  }

  private readonly interruptWorker: Effect.Effect<void> = Effect.suspend(() =>
    this.worker === undefined ? Effect.void : Fiber.interrupt(this.worker)
  )

  requestApproval(request: AgentSession.ApprovalRequest): Effect.Effect<AgentSession.ApprovalDecision> {
    const actor = this
    return Effect.gen(function*() {
      const requestId = globalThis.crypto.randomUUID()
      const options = request.options ?? ["allow", "deny"]
      const fallback = request.default ?? "deny"
      const timeout = request.timeout === undefined
        ? actor.config.approvalTimeout
        : Duration.fromInputUnsafe(request.timeout)
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
      const timedOut = Option.isNone(given)
      if (approved) actor.publish(SessionEvent.ApprovalGranted, { requestId, choice })
      else actor.publish(SessionEvent.ApprovalDenied, { requestId, choice, reason: timedOut ? "timeout" : "choice" })
      return { requestId, choice, approved, timedOut }
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
    return Effect.suspend(() => {
      if (this.status !== "open") return Deferred.await(this.closed)
      this.status = "closing"
      this.endReason = reason
      const ended = Exit.fail(new SessionEnded({ sessionId: this.sessionId, reason }))
      const failQueued = Effect.sync(() => {
        for (const envelope of this.mailbox.splice(0)) Deferred.doneUnsafe(envelope.reply, ended)
      })
      const running = this.current
      const drained = running === undefined ? Effect.void : Effect.timeoutOption(running.stopped, drain)
      return failQueued.pipe(
        Effect.andThen(drained),
        Effect.andThen(this.interruptWorker),
        Effect.andThen(this.flushMetadata),
        Effect.andThen(Effect.sync(() => {
          this.publish(SessionEvent.SessionEnd, { reason })
          this.log.close()
          this.approvals = undefined
        })),
        Effect.andThen(Scope.close(this.scope, Exit.void)),
        Effect.andThen(Effect.sync(() => {
          this.status = "closed"
          onClosed()
          Deferred.doneUnsafe(this.closed, Exit.void)
        }))
      )
    })
  }
}
