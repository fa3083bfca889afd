/**
 * Bundle files in the origin's format (microsoft/amplifier): `bundle.md`
 * (YAML frontmatter, then the Markdown body that becomes the system
 * instruction) or `bundle.yaml`. Decoding names the file and the field of a
 * mistake; `load` resolves local `includes` and composes them in order.
 *
 * @since 0.1.0
 */
import { Effect, FileSystem, Path, Result, Schema, SchemaIssue } from "effect"
import * as crypto from "node:crypto"
import * as Yaml from "yaml"
import type { AgentSpec, BundleSpec, ModuleRef as EngineModuleRef } from "./AgentEngine.ts"
import { BundleLoadError } from "./SessionError.ts"

const Settings = Schema.Record(Schema.String, Schema.Unknown)

/** A module entry: `{ module, source?, config? }`. */
export const ModuleRef = Schema.Struct({
  module: Schema.String,
  source: Schema.optionalKey(Schema.String),
  config: Schema.optionalKey(Settings)
})
/** A module entry. */
export type ModuleRef = typeof ModuleRef.Type

/** A sub-agent defined inline. */
export const AgentFile = Schema.Struct({
  description: Schema.optionalKey(Schema.String),
  instruction: Schema.optionalKey(Schema.String),
  providers: Schema.optionalKey(Schema.Array(ModuleRef)),
  tools: Schema.optionalKey(Schema.Array(ModuleRef))
})

/** An `includes` entry: a path, or `{ bundle: path }` as the origin writes it. */
export const Include = Schema.Union([Schema.String, Schema.Struct({ bundle: Schema.String })])

/** One bundle file, as written. */
export const BundleFile = Schema.Struct({
  bundle: Schema.Struct({
    name: Schema.String,
    version: Schema.optionalKey(Schema.String),
    description: Schema.optionalKey(Schema.String)
  }),
  includes: Schema.optionalKey(Schema.Array(Include)),
  session: Schema.optionalKey(Settings),
  providers: Schema.optionalKey(Schema.Array(ModuleRef)),
  tools: Schema.optionalKey(Schema.Array(ModuleRef)),
  hooks: Schema.optionalKey(Schema.Array(ModuleRef)),
  agents: Schema.optionalKey(Schema.Record(Schema.String, AgentFile)),
  /** For `bundle.yaml`: the system instruction (a `bundle.md` has it as its body). */
  instruction: Schema.optionalKey(Schema.String)
})
/** One bundle file, as written. */
export type BundleFile = typeof BundleFile.Type

/** A composed bundle: what the `AgentEngine` prepares, plus where it came from. */
export interface BundleConfig extends BundleSpec {
  readonly description: string
  readonly path: string
  /** Every file composed into it, includes first. */
  readonly files: ReadonlyArray<string>
}

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()
const decodeFile = Schema.decodeUnknownResult(BundleFile)

const fieldOf = (path: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined): string =>
  (path ?? []).reduce<string>((out, segment) => {
    const key = typeof segment === "object" ? segment.key : segment
    return typeof key === "number" ? `${out}[${key}]` : out === "" ? String(key) : `${out}.${String(key)}`
  }, "")

const loadError = (path: string, detail: string, field?: string, bundle?: string) =>
  new BundleLoadError({ bundle: bundle ?? path, path, detail, ...(field !== undefined ? { field } : {}) })

/** Splits `bundle.md` into its frontmatter and body. */
const splitFrontmatter = (
  text: string,
  path: string
): Result.Result<{ yaml: string; body: string }, BundleLoadError> => {
  const normalized = text.replace(/^\uFEFF/, "").replace(/\r\n/g, "\n")
  if (!normalized.startsWith("---\n")) {
    return Result.fail(loadError(path, "a bundle.md starts with a '---' line and YAML frontmatter"))
  }
  const end = normalized.indexOf("\n---", 3)
  const after = end === -1 ? -1 : normalized.indexOf("\n", end + 4)
  if (end === -1 || (after !== -1 && normalized.slice(end + 4, after).trim() !== "")) {
    return Result.fail(loadError(path, "the frontmatter has no closing '---' line"))
  }
  return Result.succeed({
    yaml: normalized.slice(4, end + 1),
    body: after === -1 ? "" : normalized.slice(after + 1).trim()
  })
}

/** Decodes one bundle file's text; `path` decides the format (`.md`: frontmatter and body). */
export const parse = (text: string, path: string): Effect.Effect<BundleFile, BundleLoadError> =>
  Effect.suspend(() => {
    const markdown = path.endsWith(".md")
    let yaml = text
    let body: string | undefined
    if (markdown) {
      const split = splitFrontmatter(text, path)
      if (Result.isFailure(split)) return Effect.fail(split.failure)
      yaml = split.success.yaml
      body = split.success.body
    }
    const document = Yaml.parseDocument(yaml, { prettyErrors: false })
    const syntax = document.errors[0]
    if (syntax !== undefined) {
      const line = (syntax.linePos?.[0].line ?? 0) + (markdown ? 1 : 0)
      return Effect.fail(loadError(path, `invalid YAML at line ${line}: ${syntax.message.split("\n")[0]}`))
    }
    const data: unknown = document.toJS()
    if (typeof data !== "object" || data === null || Array.isArray(data)) {
      return Effect.fail(loadError(path, "the bundle's YAML must be a mapping of keys (bundle, includes, tools …)"))
    }
    const agents = (data as { agents?: unknown }).agents
    if (typeof agents === "object" && agents !== null && "include" in agents) {
      return Effect.fail(loadError(
        path,
        "agents.include refers to agent files of remote bundles, which cannot be fetched here; define the agents inline",
        "agents.include"
      ))
    }
    const decoded = decodeFile(data)
    if (Result.isFailure(decoded)) {
      const [issue] = formatter(decoded.failure.issue).issues
      const name = (data as { bundle?: { name?: unknown } }).bundle?.name
      return Effect.fail(loadError(
        path,
        issue?.message ?? "not a bundle",
        fieldOf(issue?.path),
        typeof name === "string" ? name : undefined
      ))
    }
    const file = decoded.success
    return Effect.succeed(
      body !== undefined && body.length > 0 && file.instruction === undefined ? { ...file, instruction: body } : file
    )
  })

const isRemote = (ref: string): boolean => /^[a-z][a-z0-9+.-]*:\/\//i.test(ref) || /^[\w-]+:(?![\\/])/.test(ref)

/** Merges `patch` into `base` key by key, recursively for plain objects (later wins). */
const deepMerge = (
  base: Readonly<Record<string, unknown>>,
  patch: Readonly<Record<string, unknown>>
): Record<string, unknown> => {
  const out: Record<string, unknown> = { ...base }
  for (const [key, value] of Object.entries(patch)) {
    const current = out[key]
    out[key] = isRecord(current) && isRecord(value) ? deepMerge(current, value) : value
  }
  return out
}
const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** Merges module lists by `module`: a later entry's config is merged over the earlier one, new ones are appended. */
const mergeModules = (
  base: ReadonlyArray<EngineModuleRef>,
  later: ReadonlyArray<EngineModuleRef>
): Array<EngineModuleRef> => {
  const out = [...base]
  for (const entry of later) {
    const at = out.findIndex((existing) => existing.module === entry.module)
    if (at === -1) out.push(entry)
    else {
      const earlier = out[at]
      out[at] = {
        module: entry.module,
        ...(entry.source ?? earlier.source ? { source: entry.source ?? earlier.source } : {}),
        config: deepMerge(earlier.config ?? {}, entry.config ?? {})
      }
    }
  }
  return out
}

/** `later` composed over `base`: the rules of the origin (later wins). */
export const compose = (base: BundleConfig, later: BundleConfig): BundleConfig => ({
  name: later.name,
  version: later.version,
  description: later.description,
  instruction: later.instruction.length > 0 ? later.instruction : base.instruction,
  session: deepMerge(base.session ?? {}, later.session ?? {}),
  providers: mergeModules(base.providers, later.providers),
  tools: mergeModules(base.tools, later.tools),
  hooks: mergeModules(base.hooks, later.hooks),
  agents: { ...base.agents, ...later.agents },
  path: later.path,
  files: [...base.files, ...later.files.filter((file) => !base.files.includes(file))]
})

const fromFile = (file: BundleFile, path: string): BundleConfig => ({
  name: file.bundle.name,
  version: file.bundle.version ?? "0.0.0",
  description: file.bundle.description ?? "",
  instruction: file.instruction ?? "",
  session: file.session ?? {},
  providers: file.providers ?? [],
  tools: file.tools ?? [],
  hooks: file.hooks ?? [],
  agents: Object.fromEntries(
    Object.entries(file.agents ?? {}).map(([name, agent]): [string, AgentSpec] => [name, agent])
  ),
  path,
  files: [path]
})

/**
 * Loads a bundle (a `bundle.md`/`bundle.yaml` file, or a folder holding one)
 * with its local `includes`, resolved relative to the including file and
 * composed in order (includes first, then the bundle itself). A cycle, a
 * missing file or a remote source fails at once, naming it.
 */
export const load = (target: string): Effect.Effect<BundleConfig, BundleLoadError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const paths = yield* Path.Path

    const locate = (ref: string, from: string | undefined) =>
      Effect.gen(function*() {
        const absolute = paths.resolve(from === undefined ? "" : paths.dirname(from), ref)
        const info = yield* fs.stat(absolute).pipe(
          Effect.mapError(() =>
            loadError(
              absolute,
              from === undefined ? "no such bundle file or folder" : `no such bundle (included by ${from})`
            )
          )
        )
        if (info.type !== "Directory") return absolute
        for (const name of ["bundle.md", "bundle.yaml", "bundle.yml"]) {
          const candidate = paths.join(absolute, name)
          if (yield* fs.exists(candidate).pipe(Effect.orElseSucceed(() => false))) return candidate
        }
        return yield* loadError(absolute, "the folder has no bundle.md or bundle.yaml")
      })

    const visit = (file: string, chain: ReadonlyArray<string>): Effect.Effect<BundleConfig, BundleLoadError> =>
      Effect.gen(function*() {
        if (chain.includes(file)) {
          return yield* loadError(file, `includes form a cycle: ${[...chain, file].join(" -> ")}`, "includes")
        }
        const text = yield* fs.readFileString(file).pipe(Effect.mapError(() => loadError(file, "cannot read the file")))
        const parsed = yield* parse(text, file)
        let composed: BundleConfig | undefined
        for (const [i, entry] of (parsed.includes ?? []).entries()) {
          const ref = typeof entry === "string" ? entry : entry.bundle
          if (isRemote(ref)) {
            return yield* loadError(
              file,
              `'${ref}' is a remote bundle source, which cannot be fetched here; vendor it into a local folder and include it by path`,
              `includes[${i}]`,
              parsed.bundle.name
            )
          }
          const included = yield* visit(yield* locate(ref, file), [...chain, file])
          composed = composed === undefined ? included : compose(composed, included)
        }
        const own = fromFile(parsed, file)
        return composed === undefined ? own : compose(composed, own)
      })

    return yield* visit(yield* locate(target, undefined), [])
  })

/** A short, stable hash of a composed bundle: it changes when anything that matters changes. */
export const fingerprint = (config: BundleConfig): string =>
  crypto.createHash("sha256").update(JSON.stringify({ ...config, files: undefined })).digest("hex").slice(0, 16)
