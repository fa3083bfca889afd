import { Effect } from "effect"
import type { SessionHistory } from "../AgentSession.ts"
import * as Transcript from "../Transcript.ts"

/** Where a session's history is written: the transcript store, bound to the session's location. */
export interface HistorySink<E> {
  /** Appends messages to the end of the transcript. */
  readonly append: (messages: ReadonlyArray<Transcript.Message>) => Effect.Effect<void, E>
  /** Rewrites the whole transcript (atomically). */
  readonly save: (messages: ReadonlyArray<Transcript.Message>) => Effect.Effect<void, E>
}

/**
 * A session's conversation in memory, with the count of messages already in
 * the transcript: `flush` writes only what is new (an append, so the cost of a
 * turn does not grow with the conversation), and a repair that changes more
 * than the unwritten tail rewrites the file.
 */
export class History<E> implements SessionHistory {
  private readonly list: Array<Transcript.Message>
  private written: number

  constructor(initial: ReadonlyArray<Transcript.Message>, private readonly sink: HistorySink<E>) {
    this.list = initial.slice()
    this.written = initial.length
  }

  readonly messages: Effect.Effect<ReadonlyArray<Transcript.Message>> = Effect.sync(() => this.list.slice())

  readonly append = (messages: ReadonlyArray<Transcript.Message>): Effect.Effect<void> =>
    Effect.sync(() => void this.list.push(...messages))

  /** Adds messages now (the backend's own: the prompt, the answer, the closing note of a cancel). */
  add(...messages: ReadonlyArray<Transcript.Message>): void {
    this.list.push(...messages)
  }

  get length(): number {
    return this.list.length
  }

  /** Writes the messages added since the last flush. */
  readonly flush: Effect.Effect<void, E> = Effect.suspend(() => {
    if (this.written >= this.list.length) return Effect.void
    const end = this.list.length
    return Effect.map(this.sink.append(this.list.slice(this.written, end)), () => {
      this.written = Math.max(this.written, end)
    })
  })

  /**
   * Answers every tool call left without a result (one synthetic error result
   * each, saying why) and drops results whose call is missing, then writes the
   * conversation: the new tail when the written part is unchanged, else all of it.
   */
  repair(reason: Transcript.RepairReason): Effect.Effect<void, E> {
    return Effect.suspend(() => {
      const repaired = Transcript.repair(this.list, reason)
      if (repaired.inserted + repaired.dropped === 0) return this.flush
      const writtenKept = this.list.slice(0, this.written).every((message, i) => repaired.messages[i] === message)
      this.list.splice(0, this.list.length, ...repaired.messages)
      if (writtenKept) return this.flush
      const all = this.list.slice()
      return Effect.map(this.sink.save(all), () => {
        this.written = all.length
      })
    })
  }
}
