import { Deferred, Effect, Queue, Scope } from "effect"
import { SessionInfo } from "../src/SessionInfo.ts"
import { EventLog } from "../src/internal/eventLog.ts"
import * as SessionEvent from "../src/SessionEvent.ts"
const N = 20000
const heap = () => { globalThis.gc!(); globalThis.gc!(); return process.memoryUsage().heapUsed }
const measure = (name: string, f: () => Effect.Effect<unknown>) => Effect.gen(function*() {
  const keep: Array<unknown> = []
  const b = heap()
  for (let i = 0; i < N; i++) keep.push(yield* f())
  console.log(name.padEnd(30), Math.round((heap() - b) / N))
  return keep
})
Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const scope = yield* Effect.scope
  yield* measure("SessionInfo", () => Effect.sync(() => new SessionInfo({ sessionId: crypto.randomUUID(), projectId: "-tmp", workingDir: "/tmp", isActive: true, bundle: "x", bundleVersion: "1" })))
  yield* measure("uuid string", () => Effect.sync(() => crypto.randomUUID()))
  yield* measure("Queue.bounded", () => Queue.bounded<number>(256))
  yield* measure("Deferred", () => Deferred.make<void>())
  yield* measure("Scope.fork", () => Scope.fork(scope))
  yield* measure("EventLog+1 event", () => Effect.sync(() => { const l = new EventLog("s", 1024); l.publish(SessionEvent.SessionStart, { bundle: "b", workingDir: "/tmp" }, 0); return l }))
  const q = yield* Queue.bounded<number>(1)
  yield* measure("forkIn worker on take", () => Effect.forkIn(Effect.forever(Queue.take(q), { disableYield: true }), scope))
  yield* measure("forkIn uninterruptibleMask", () => Effect.forkIn(Effect.uninterruptibleMask((r) => r(Queue.take(q))).pipe(Effect.forever({ disableYield: true })), scope))
  yield* measure("Map", () => Effect.sync(() => new Map()))
})))
