/**
 * Mailbox benchmark: per-message overhead of `sendMessage` on the scripted
 * echo engine, sequential and over 1,000 sessions in parallel, against two
 * baselines measured in the same run (a bare Effect `Queue` + `Deferred`
 * worker, and a plain Promise queue); then heap bytes per idle live session.
 *
 *   npm run bench            (compiles src and bench with tsc, then runs node --expose-gc)
 *   BENCH_MESSAGES=50000 BENCH_IDLE_SESSIONS=20000 npm run bench   (a quicker run)
 */
import { Deferred, Effect, Fiber, Layer, Queue } from "effect"
import { SessionBackend, SessionError, SessionId, Testing, TranscriptStore } from "../src/index.ts"

const messages = Number(process.env.BENCH_MESSAGES ?? 200_000)
const parallelSessions = 1_000
const idleSessions = Number(process.env.BENCH_IDLE_SESSIONS ?? 100_000)
const rounds = 3

const rate = (count: number, millis: number) => Math.round(count / (millis / 1000))

const timed = <E, R>(effect: Effect.Effect<unknown, E, R>) =>
  Effect.gen(function*() {
    const start = performance.now()
    yield* effect
    return performance.now() - start
  })

/** Best of `rounds` runs, in messages per second. */
const best = <E, R>(make: () => Effect.Effect<unknown, E, R>) =>
  Effect.gen(function*() {
    let fastest = Infinity
    for (let i = 0; i < rounds; i++) fastest = Math.min(fastest, yield* timed(make()))
    return rate(messages, fastest)
  })

// ---- baseline 1: a bare Effect Queue + Deferred worker per session
const bareWorker = Effect.gen(function*() {
  const queue = yield* Queue.bounded<readonly [string, Deferred.Deferred<string>]>(256)
  const worker = yield* Effect.forkChild(
    Effect.forever(Effect.flatMap(Queue.take(queue), ([text, reply]) => Deferred.succeed(reply, text)))
  )
  const send = (text: string) =>
    Effect.flatMap(
      Deferred.make<string>(),
      (reply) => Effect.andThen(Queue.offer(queue, [text, reply] as const), Deferred.await(reply))
    )
  return { send, worker }
})

const bareSequential = Effect.gen(function*() {
  const { send, worker } = yield* bareWorker
  for (let i = 0; i < messages; i++) yield* send("ping")
  yield* Fiber.interrupt(worker)
})

const bareParallel = Effect.gen(function*() {
  const workers = yield* Effect.forEach(Array.from({ length: parallelSessions }), () => bareWorker)
  yield* Effect.forEach(workers, ({ send }) =>
    Effect.gen(function*() {
      for (let i = 0; i < messages / parallelSessions; i++) yield* send("ping")
    }), { concurrency: "unbounded", discard: true })
  yield* Effect.forEach(workers, ({ worker }) => Fiber.interrupt(worker), { discard: true })
})

// ---- baseline 2: a plain Promise queue per session
class PromiseMailbox {
  private readonly queue: Array<{ text: string; resolve: (reply: string) => void }> = []
  private wake: (() => void) | undefined
  constructor() {
    void this.run()
  }
  send(text: string): Promise<string> {
    return new Promise((resolve) => {
      this.queue.push({ text, resolve })
      this.wake?.()
    })
  }
  private async run() {
    for (;;) {
      const next = this.queue.shift()
      if (next === undefined) {
        await new Promise<void>((resolve) => (this.wake = resolve))
        this.wake = undefined
        continue
      }
      next.resolve(next.text)
    }
  }
}

const promiseSequential = Effect.promise(async () => {
  const mailbox = new PromiseMailbox()
  for (let i = 0; i < messages; i++) await mailbox.send("ping")
})

const promiseParallel = Effect.promise(async () => {
  const mailboxes = Array.from({ length: parallelSessions }, () => new PromiseMailbox())
  await Promise.all(mailboxes.map(async (mailbox) => {
    for (let i = 0; i < messages / parallelSessions; i++) await mailbox.send("ping")
  }))
})

// ---- the backend
const backendSequential = Effect.gen(function*() {
  const sessions = yield* SessionBackend.SessionBackend
  const { sessionId } = yield* sessions.createSession({ workingDir: "/tmp" })
  for (let i = 0; i < messages; i++) yield* sessions.sendMessage(sessionId, "ping")
  yield* sessions.endSession(sessionId)
})

// the same with a span around each call, as `Effect.fn("SessionBackend.sendMessage")` would add
const backendSequentialSpanned = Effect.gen(function*() {
  const sessions = yield* SessionBackend.SessionBackend
  const { sessionId } = yield* sessions.createSession({ workingDir: "/tmp" })
  const send = Effect.fn("SessionBackend.sendMessage")((text: string) => sessions.sendMessage(sessionId, text))
  for (let i = 0; i < messages; i++) yield* send("ping")
  yield* sessions.endSession(sessionId)
})

const backendParallel = Effect.gen(function*() {
  const sessions = yield* SessionBackend.SessionBackend
  const ids = yield* Effect.forEach(
    Array.from({ length: parallelSessions }),
    () => sessions.createSession({ workingDir: "/tmp" })
  )
  const run = Effect.forEach(ids, ({ sessionId }) =>
    Effect.gen(function*() {
      for (let i = 0; i < messages / parallelSessions; i++) yield* sessions.sendMessage(sessionId, "ping")
    }), { concurrency: "unbounded", discard: true })
  const elapsed = yield* timed(run)
  yield* sessions.stop
  return elapsed
})

const heapUsed = () => {
  globalThis.gc?.()
  globalThis.gc?.()
  return process.memoryUsage().heapUsed
}

/**
 * A store that keeps nothing: the idle-memory figure is the heap of a live
 * session, not of the transcripts (which a real deployment keeps on disk).
 */
const layerNoStorage = Layer.succeed(TranscriptStore.TranscriptStore, {
  home: "/nowhere",
  locate: (sessionId, workingDir) =>
    Effect.map(SessionId.decode(sessionId), (id) => ({
      sessionId: id,
      projectId: workingDir,
      directory: "",
      transcriptPath: "",
      metadataPath: ""
    })),
  find: (sessionId) => Effect.fail(new SessionError.TranscriptNotFound({ sessionId })),
  load: (location) => Effect.fail(new SessionError.TranscriptNotFound({ sessionId: location.sessionId })),
  list: Effect.succeed([]),
  append: () => Effect.void,
  save: () => Effect.void,
  saveMetadata: () => Effect.void
})

const idleMemory = Effect.gen(function*() {
  const sessions = yield* SessionBackend.SessionBackend
  const before = heapUsed()
  for (let i = 0; i < idleSessions; i++) yield* sessions.createSession({ workingDir: "/tmp" })
  const after = heapUsed()
  const live = (yield* sessions.listActiveSessions).length
  yield* sessions.stop
  return { perSession: Math.round((after - before) / live), live }
})

const bareIdleMemory = Effect.gen(function*() {
  const before = heapUsed()
  const workers = []
  for (let i = 0; i < idleSessions; i++) workers.push(yield* bareWorker)
  const after = heapUsed()
  const perSession = Math.round((after - before) / workers.length)
  yield* Effect.forEach(workers, ({ worker }) => Fiber.interrupt(worker), { discard: true })
  return perSession
})

/**
 * The backend over the echo engine. The headline figures use a store that
 * keeps nothing, as the origin's echo workload writes nothing; the "in-memory
 * store" lines add the work of writing every turn to `TranscriptStore.layerMemory`.
 */
const withBackend = <A, E>(
  effect: Effect.Effect<A, E, SessionBackend.SessionBackend>,
  backend: SessionBackend.Options = {},
  storage: "none" | "memory" = "none"
) =>
  effect.pipe(
    Effect.provide(
      Testing.layer({
        backend,
        store: storage === "none" ? layerNoStorage : TranscriptStore.layerMemory()
      }) satisfies Layer.Layer<SessionBackend.SessionBackend>
    )
  )

const program = Effect.gen(function*() {
  if (globalThis.gc === undefined) console.warn("run with node --expose-gc for the memory figures")
  console.log(`node ${process.version}, ${messages} messages per run, best of ${rounds}\n`)
  console.log("sequential, one session (messages/s):")
  const seq = {
    promise: yield* best(() => promiseSequential),
    bare: yield* best(() => Effect.scoped(bareSequential)),
    backend: yield* best(() => withBackend(backendSequential)),
    spanned: yield* best(() => withBackend(backendSequentialSpanned)),
    stored: yield* best(() => withBackend(backendSequential, {}, "memory"))
  }
  console.log(`  plain Promise queue              ${seq.promise}`)
  console.log(`  bare Effect Queue + Deferred     ${seq.bare}`)
  console.log(
    `  SessionBackend.sendMessage       ${seq.backend}   (${(seq.backend / 62_000).toFixed(1)}x the origin's ~62,000)`
  )
  console.log(`  ... each call in a span          ${seq.spanned}   (why sendMessage is not an Effect.fn span)`)
  console.log(`  ... over the in-memory store     ${seq.stored}`)

  console.log(`\n${parallelSessions} sessions in parallel (messages/s):`)
  let fastestBackend = Infinity
  for (let i = 0; i < rounds; i++) fastestBackend = Math.min(fastestBackend, yield* withBackend(backendParallel))
  let fastestStored = Infinity
  for (let i = 0; i < rounds; i++) {
    fastestStored = Math.min(fastestStored, yield* withBackend(backendParallel, {}, "memory"))
  }
  let fastestSmallWindow = Infinity
  for (let i = 0; i < rounds; i++) {
    fastestSmallWindow = Math.min(fastestSmallWindow, yield* withBackend(backendParallel, { replayWindow: 16 }))
  }
  const par = {
    promise: yield* best(() => promiseParallel),
    bare: yield* best(() => Effect.scoped(bareParallel)),
    backend: rate(messages, fastestBackend)
  }
  console.log(`  plain Promise queue              ${par.promise}`)
  console.log(`  bare Effect Queue + Deferred     ${par.bare}`)
  console.log(
    `  SessionBackend.sendMessage       ${par.backend}   (${(par.backend / 68_000).toFixed(1)}x the origin's ~68,000)`
  )
  console.log(`  ... over the in-memory store     ${rate(messages, fastestStored)}`)
  console.log(
    `  ... with replayWindow 16         ${
      rate(messages, fastestSmallWindow)
    }   (the default keeps 1024 events a session)`
  )

  console.log(`\nheap per idle live session (${idleSessions} sessions):`)
  const bare = yield* Effect.scoped(bareIdleMemory)
  const idle = yield* idleMemory.pipe(
    Effect.provide(Testing.layer({ store: layerNoStorage }) satisfies Layer.Layer<SessionBackend.SessionBackend>)
  )
  console.log(`  bare Effect fiber + Queue        ${bare} bytes`)
  console.log(`  SessionBackend session           ${idle.perSession} bytes   (target < 4096; the origin ~5,500)`)
})

Effect.runPromise(program)
