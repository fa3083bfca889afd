import { createRequire } from "node:module"
import * as path from "node:path"
import { pathToFileURL } from "node:url"

/**
 * tsx's loader as a file URL, for `node --import` in child processes. It is
 * resolved here, not by the child, whose cwd may be a folder a test deletes.
 */
export const tsxLoader = pathToFileURL(
  path.join(path.dirname(createRequire(import.meta.url).resolve("tsx/package.json")), "dist", "loader.mjs")
).href
