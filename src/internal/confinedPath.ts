/**
 * Keeps the built-in tools inside a session's working directory: a path is
 * resolved against it and refused when it, or the real path of its nearest
 * existing ancestor, lies outside, so neither `..`, absolute paths, `~` nor a
 * symbolic link can lead a tool out of the directory.
 */
import { Effect } from "effect"
import type { FileSystem, Path, PlatformError } from "effect"

/** Why a tool call could not go ahead, as the model reads it. */
export interface Refusal {
  readonly message: string
}

/** A path inside the working directory. */
export interface ConfinedPath {
  /** The real path to operate on (symbolic links resolved). */
  readonly real: string
  /** The path relative to the working directory, `"."` for the directory itself. */
  readonly relative: string
}

/** Symbolic links followed by hand (dangling ones) before giving up, as the OS does. */
const maxLinkHops = 40

const isInside = (path: Path.Path, root: string, candidate: string): boolean => {
  const relative = path.relative(root, candidate)
  return relative === "" || (relative !== ".." && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative))
}

/** A one-line description of a file system failure on `shown` (the path the model gave). */
export const describePlatformError = (shown: string, error: PlatformError.PlatformError): string => {
  const reason = error.reason
  if (reason._tag === "BadArgument") return `${shown}: ${reason.description ?? reason.message}`
  switch (reason._tag) {
    case "NotFound":
      return `${shown}: no such file or directory`
    case "PermissionDenied":
      return `${shown}: permission denied`
    case "AlreadyExists":
      return `${shown}: already exists`
    default:
      return `${shown}: ${reason.description ?? reason._tag}${
        reason.syscall !== undefined ? ` (${reason.syscall})` : ""
      }`
  }
}

/**
 * The real path of `target`, which need not exist: the real path of its
 * nearest existing ancestor with the rest appended; a dangling symbolic link
 * is followed to where it points.
 */
const realPathOf = (
  fs: FileSystem.FileSystem,
  path: Path.Path,
  target: string,
  hops: number
): Effect.Effect<string, Refusal> =>
  fs.realPath(target).pipe(
    Effect.catch(() =>
      fs.readLink(target).pipe(
        Effect.matchEffect({
          onSuccess: (link) =>
            hops >= maxLinkHops
              ? Effect.fail({ message: `too many levels of symbolic links at ${target}` })
              : realPathOf(fs, path, path.resolve(path.dirname(target), link), hops + 1),
          onFailure: () => {
            const parent = path.dirname(target)
            return parent === target
              ? Effect.succeed(target)
              : Effect.map(realPathOf(fs, path, parent, hops), (real) => path.join(real, path.basename(target)))
          }
        })
      )
    )
  )

/**
 * Resolves `requested` against `workingDir` and refuses (with a message for
 * the model) any path that is, or leads through a symbolic link, outside it.
 */
export const confine = (
  fs: FileSystem.FileSystem,
  path: Path.Path,
  workingDir: string,
  requested: string
): Effect.Effect<ConfinedPath, Refusal> =>
  Effect.gen(function*() {
    const refuse = (why: string) =>
      Effect.fail<Refusal>({
        message: `Refused: ${why}. Only paths inside the working directory ${workingDir} can be used; ` +
          `give them relative to it.`
      })
    if (requested.includes("\0")) return yield* refuse("the path contains a NUL character")
    if (requested.startsWith("~")) {
      return yield* refuse(`${requested} is in a home directory ("~" is not expanded)`)
    }
    const root = path.resolve(workingDir)
    const realRoot = yield* fs.realPath(root).pipe(
      Effect.mapError(() => ({ message: `the working directory ${workingDir} does not exist` }))
    )
    const lexical = path.resolve(root, requested)
    if (!isInside(path, root, lexical) && !isInside(path, realRoot, lexical)) {
      return yield* refuse(`${requested} is outside the working directory`)
    }
    const real = yield* realPathOf(fs, path, lexical, 0)
    if (!isInside(path, realRoot, real)) {
      return yield* refuse(`${requested} leads outside the working directory through a symbolic link`)
    }
    const relative = path.relative(realRoot, real)
    return { real, relative: relative === "" ? "." : relative }
  })
