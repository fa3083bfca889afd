/**
 * Session ids: the one piece of client input that ends up in file paths, so it
 * is validated by a schema before anything else touches it.
 *
 * @since 0.1.0
 */
import { Effect, Schema } from "effect"
import { InvalidSessionId } from "./SessionError.ts"

/** Longest accepted session id. */
export const maxLength = 128

const forbidden = /[/\\\u0000-\u001f\u007f]/

/** Says which rule `input` breaks, or `undefined` when it is a valid session id. */
export const violation = (input: string): string | undefined => {
  if (input.length === 0) return "a session id may not be empty"
  if (input.length > maxLength) return `a session id is at most ${maxLength} characters`
  if (forbidden.test(input)) return "a session id may not contain '/', '\\' or control characters"
  if (input.includes("..")) return "a session id may not contain '..'"
  if (input === ".") return "a session id may not be '.'"
  return undefined
}

/**
 * A validated session id: 1 to 128 characters, no `/`, `\`, `..`, NUL or
 * other control characters.
 */
export const SessionId = Schema.String.check(Schema.makeFilter(violation)).pipe(Schema.brand("SessionId"))

/** A validated session id. */
export type SessionId = typeof SessionId.Type

/**
 * Validates untrusted input as a `SessionId`, failing with `InvalidSessionId`
 * that says which rule was broken.
 */
export const decode = (input: string): Effect.Effect<SessionId, InvalidSessionId> => {
  const message = violation(input)
  return message === undefined
    ? Effect.succeed(input as SessionId)
    : Effect.fail(new InvalidSessionId({ input: input.slice(0, maxLength + 8), detail: message }))
}

/** Whether `input` is a valid session id. */
export const isSessionId: (input: unknown) => input is SessionId = Schema.is(SessionId)

/** Makes a fresh random session id (a UUID v4). */
export const make: Effect.Effect<SessionId> = Effect.sync(() => globalThis.crypto.randomUUID() as SessionId)
