import { Effect } from "effect"
import { SessionBackend, Testing } from "../src/index.ts"
const N = 200000
const prog = Effect.gen(function*() {
  const sessions = yield* SessionBackend.SessionBackend
  const ids = yield* Effect.forEach(Array.from({ length: 1000 }), () => sessions.createSession({ workingDir: "/tmp" }))
  for (let r = 0; r < 3; r++) {
    const t = performance.now()
    yield* Effect.forEach(ids, ({ sessionId }) => Effect.gen(function*() {
      for (let i = 0; i < N / 1000; i++) yield* sessions.sendMessage(sessionId, "ping")
    }), { concurrency: "unbounded", discard: true })
    console.log(Math.round(N / ((performance.now() - t) / 1000)))
  }
}).pipe(Effect.provide(Testing.layer({ backend: { replayWindow: Number(process.env.WINDOW ?? 1024) } })))
Effect.runPromise(prog)
