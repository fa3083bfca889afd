import { Effect, Stream } from "effect"
import type { Service } from "../SessionBackend.ts"

/** One call the mock backend ran. */
export interface RecordedCall {
  readonly method: keyof Service
  readonly args: ReadonlyArray<unknown>
}

/** Wraps every method of `service` so each call is appended to `calls` when it runs. */
export const recording = (service: Service, calls: Array<RecordedCall>): Service => {
  const recorded = <A, E, R>(method: keyof Service, args: ReadonlyArray<unknown>, run: () => Effect.Effect<A, E, R>) =>
    Effect.suspend(() => {
      calls.push({ method, args })
      return run()
    })
  const recordedStream = <A, E, R>(
    method: keyof Service,
    args: ReadonlyArray<unknown>,
    run: () => Stream.Stream<A, E, R>
  ) =>
    Stream.suspend(() => {
      calls.push({ method, args })
      return run()
    })
  return {
    createSession: (...args) => recorded("createSession", args, () => service.createSession(...args)),
    sendMessage: (...args) => recorded("sendMessage", args, () => service.sendMessage(...args)),
    execute: (...args) => recordedStream("execute", args, () => service.execute(...args)),
    events: (...args) => recordedStream("events", args, () => service.events(...args)),
    cancelSession: (...args) => recorded("cancelSession", args, () => service.cancelSession(...args)),
    endSession: (...args) => recorded("endSession", args, () => service.endSession(...args)),
    resumeSession: (...args) => recorded("resumeSession", args, () => service.resumeSession(...args)),
    resolveApproval: (...args) => recorded("resolveApproval", args, () => service.resolveApproval(...args)),
    pendingApprovals: (...args) => recorded("pendingApprovals", args, () => service.pendingApprovals(...args)),
    getSessionInfo: (...args) => recorded("getSessionInfo", args, () => service.getSessionInfo(...args)),
    listActiveSessions: recorded("listActiveSessions", [], () => service.listActiveSessions),
    stop: recorded("stop", [], () => service.stop)
  }
}
