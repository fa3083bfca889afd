/**
 * Bounded text for tool results: a window of lines out of a text stream
 * (`read_file`) and a capped capture of process output (`run_command`), each
 * stopping at a byte budget so one call cannot flood the model's context.
 */
import { Effect, Stream } from "effect"

const encoder = new TextEncoder()

/** Lines `offset …` (1-based) of a text, at most `limit` of them and `maxBytes` bytes. */
export interface LineWindow {
  readonly text: string
  /** The line at which the byte budget ran out, when it did. */
  readonly truncatedAtLine: number | undefined
  /** A NUL character was seen: the file is not text. */
  readonly binary: boolean
}

/** The longest prefix of `text` whose UTF-8 encoding fits in `bytes`. */
const prefixWithin = (text: string, bytes: number): string => {
  let low = 0
  let high = text.length
  while (low < high) {
    const mid = Math.ceil((low + high) / 2)
    if (encoder.encode(text.slice(0, mid)).length <= bytes) low = mid
    else high = mid - 1
  }
  return text.slice(0, low)
}

/** Reads a window of lines out of `chunks`, keeping each line's own terminator. */
export const readLineWindow = <E, R>(
  chunks: Stream.Stream<string, E, R>,
  options: { readonly offset: number; readonly limit: number; readonly maxBytes: number }
): Effect.Effect<LineWindow, E, R> =>
  Effect.suspend(() => {
    const parts: Array<string> = []
    let line = 1
    let taken = 0
    let bytes = 0
    let truncatedAtLine: number | undefined
    let binary = false
    /** Takes one piece of a line (ending in "\n" or not); false once the window is full. */
    const take = (piece: string): boolean => {
      if (line >= options.offset) {
        const size = encoder.encode(piece).length
        if (bytes + size > options.maxBytes) {
          parts.push(prefixWithin(piece, options.maxBytes - bytes))
          truncatedAtLine = line
          return false
        }
        parts.push(piece)
        bytes += size
      }
      if (piece.endsWith("\n")) {
        if (line >= options.offset) taken++
        line++
      }
      return taken < options.limit
    }
    return Stream.runForEachWhile(chunks, (chunk) =>
      Effect.sync(() => {
        if (chunk.includes("\0")) {
          binary = true
          return false
        }
        let start = 0
        while (start < chunk.length) {
          const end = chunk.indexOf("\n", start)
          const piece = end === -1 ? chunk.slice(start) : chunk.slice(start, end + 1)
          start += piece.length
          if (!take(piece)) return false
        }
        return true
      })).pipe(Effect.map((): LineWindow => ({ text: parts.join(""), truncatedAtLine, binary })))
  })

/** Collects a byte stream up to a budget, counting what it leaves out. */
export interface OutputCapture {
  readonly push: (chunk: Uint8Array) => void
  /** The text kept, with a note when some of it was left out. */
  readonly text: () => string
}

/** A capture keeping the first `maxBytes` bytes. */
export const makeOutputCapture = (maxBytes: number, label: string): OutputCapture => {
  const kept: Array<Uint8Array> = []
  let keptBytes = 0
  let total = 0
  return {
    push: (chunk) => {
      total += chunk.length
      if (keptBytes >= maxBytes) return
      const part = keptBytes + chunk.length > maxBytes ? chunk.subarray(0, maxBytes - keptBytes) : chunk
      kept.push(part)
      keptBytes += part.length
    },
    text: () => {
      const all = new Uint8Array(keptBytes)
      let at = 0
      for (const part of kept) {
        all.set(part, at)
        at += part.length
      }
      const text = new TextDecoder().decode(all)
      return total > keptBytes
        ? `${text}\n[${label} truncated: showing the first ${keptBytes} of ${total} bytes]`
        : text
    }
  }
}
