/**
 * The embedded default bundle: what sessions run when no bundle is named and
 * no bundle file is configured. It works with no network and no key (the
 * offline `LocalModel`), and uses the environment's provider when one is set
 * (`OPENAI_MODEL`, `OPENAI_BASE_URL`, `OPENAI_API_KEY`).
 *
 * @since 0.1.0
 */
import type { BundleSpec } from "./AgentEngine.ts"

/** The default bundle's system instruction. */
export const instruction = `You are a careful coding assistant working in the user's project folder.
Use the tools to look before you answer: list folders and read files rather than guessing.
Writing a file or running a command asks the user first; say what you are about to do and why.
Keep answers short and concrete.`

/** The default bundle. */
export const spec: BundleSpec = {
  name: "default",
  version: "1.0.0",
  instruction,
  providers: [],
  tools: [{ module: "tool-filesystem" }, { module: "tool-bash" }],
  hooks: [],
  agents: {
    explorer: {
      description: "reads and summarises files without changing anything",
      instruction: "You explore a project read-only and report what you find, briefly.",
      tools: [{ module: "tool-filesystem-read" }]
    }
  }
}
