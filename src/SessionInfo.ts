/**
 * What the backend tells about a session.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/** A session as clients see it. */
export class SessionInfo extends Schema.Class<SessionInfo>("effect-session-backend/SessionInfo")({
  sessionId: Schema.String,
  /** The expanded working directory with `/` replaced by `-`, as in the origin's layout. */
  projectId: Schema.String,
  workingDir: Schema.String,
  isActive: Schema.Boolean,
  /** The application that created the session (`"web"`, `"slack"` …), if it said. */
  app: Schema.optional(Schema.String),
  description: Schema.optional(Schema.String),
  /** Name of the bundle the session runs. */
  bundle: Schema.String,
  /** Version of that bundle when the session was created. */
  bundleVersion: Schema.String
}) {}

/** The project id of a working directory: the expanded path with `/` replaced by `-`. */
export const projectIdOf = (workingDir: string): string => workingDir.replaceAll("/", "-")
