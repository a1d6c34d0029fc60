/**
 * The errors of the operator API (`Admin`) and its command-line tool, as data.
 *
 * Each one is a user's mistake or an unreachable store, never a bug: its `message` is one line
 * that says what was wrong, with which value, and what to do, so that the CLI can print it as it is
 * (and exit non-zero) instead of a stack trace. None is retryable as is: the input or the store
 * has to change first, except `StoreUnavailableError`, which a later attempt may get past.
 */
import { Schema } from "effect"

/** A `cursor` given to `Admin.executions` is not one that a previous page returned. */
export class InvalidCursorError extends Schema.TaggedError<InvalidCursorError>()("InvalidCursorError", {
  cursor: Schema.String,
  detail: Schema.String
}) {
  readonly retryable = false

  override get message(): string {
    return `the cursor ${JSON.stringify(this.cursor)} is not valid (${this.detail}): pass the "next" cursor of a previous page, unchanged`
  }
}

/** A query or command argument is out of range or malformed (a limit, a status, a date, a key). */
export class InvalidArgumentError extends Schema.TaggedError<InvalidArgumentError>()("InvalidArgumentError", {
  /** The argument, as the user wrote it (`--limit`, `since`, `KEY`). */
  argument: Schema.String,
  value: Schema.String,
  /** What is expected instead. */
  expected: Schema.String
}) {
  readonly retryable = false

  override get message(): string {
    return `invalid ${this.argument} ${JSON.stringify(this.value)}: expected ${this.expected}`
  }
}

/** A signal's payload is not JSON text. */
export class InvalidSignalPayloadError extends Schema.TaggedError<InvalidSignalPayloadError>()(
  "InvalidSignalPayloadError",
  {
    executionId: Schema.String,
    signal: Schema.String,
    detail: Schema.String
  }
) {
  readonly retryable = false

  override get message(): string {
    return `the payload of signal ${JSON.stringify(this.signal)} for execution ${JSON.stringify(this.executionId)} is not valid JSON (${this.detail}); nothing was stored`
  }
}

/** The embedded store's file does not exist (a tool never creates an empty store by mistake). */
export class StoreNotFoundError extends Schema.TaggedError<StoreNotFoundError>()("StoreNotFoundError", {
  path: Schema.String
}) {
  readonly retryable = false

  override get message(): string {
    return `no store at ${this.path}: the file does not exist (check the path; an engine creates it when it first runs)`
  }
}

/** The store's address is malformed (a PostgreSQL URL that does not parse, an unknown scheme). */
export class InvalidStoreUrlError extends Schema.TaggedError<InvalidStoreUrlError>()("InvalidStoreUrlError", {
  /** The URL without its password. */
  url: Schema.String,
  detail: Schema.String
}) {
  readonly retryable = false

  override get message(): string {
    return `invalid store URL ${this.url}: ${this.detail} (expected postgres://user:password@host:port/database)`
  }
}

/** The store could not be opened or reached (server down, wrong credentials, not a database file). */
export class StoreUnavailableError extends Schema.TaggedError<StoreUnavailableError>()(
  "StoreUnavailableError",
  {
    /** The file, or the URL without its password. */
    store: Schema.String,
    detail: Schema.String
  }
) {
  readonly retryable = true

  override get message(): string {
    return `cannot open the store ${this.store}: ${this.detail}`
  }
}

/** The store has no part for this operation (entities on a journal-only store, pods on one process). */
export class UnsupportedByStoreError extends Schema.TaggedError<UnsupportedByStoreError>()(
  "UnsupportedByStoreError",
  {
    operation: Schema.String,
    detail: Schema.String
  }
) {
  readonly retryable = false

  override get message(): string {
    return `${this.operation} is not available on this store: ${this.detail}`
  }
}

/** No dead letter has this key (it was replayed already, or the key is wrong). */
export class DeadLetterNotFoundError extends Schema.TaggedError<DeadLetterNotFoundError>()(
  "DeadLetterNotFoundError",
  { key: Schema.String }
) {
  readonly retryable = false

  override get message(): string {
    return `no dead letter has the key ${JSON.stringify(this.key)} (already replayed? \`dead-letters list\` shows the keys)`
  }
}

/** A tool was given no store to work on. */
export class NoStoreError extends Schema.TaggedError<NoStoreError>()("NoStoreError", {}) {
  readonly retryable = false

  override get message(): string {
    return "no store given: pass --file PATH (an embedded SQLite store) or --postgres URL (or set DATABASE_URL)"
  }
}
