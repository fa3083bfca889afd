/**
 * The fake OpenAI-compatible server of the tests in a process of its own, for
 * `bench/orchestrator.ts`: it answers every request with the same streamed
 * text (`argv[2]` replies queued) and prints its URL.
 */
import { Console, Effect } from "effect"
import * as FakeOpenAi from "../test/support/fakeOpenAi.ts"

const replies = Number(process.argv[2] ?? 100_000)
const answer = "The quick brown fox jumps over the lazy dog. ".repeat(8)

Effect.runPromise(
  Effect.gen(function*() {
    const fake = yield* FakeOpenAi.make
    yield* fake.enqueue(...Array.from({ length: replies }, () => FakeOpenAi.text(answer, { chunks: 20 })))
    yield* Console.log(`listening on ${fake.url}`)
    return yield* Effect.never
  }).pipe(Effect.scoped)
)
