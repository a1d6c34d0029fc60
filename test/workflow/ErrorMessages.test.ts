/**
 * Errors explain themselves: every error class the package exports prints, through `Cause.pretty`,
 * its tag, the execution / workflow / activity it concerns and a non-empty message. The classes
 * are found by walking the package's exports, so a new error class fails here until it has a
 * sample below (and then until its message names what it is about).
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Schema } from "effect"
import * as EffectCluster from "../../src/index.ts"
import { Activity, MemoryJournal, Workflow, type WorkflowContext, WorkflowErrors } from "../../src/index.ts"
import { untilStep, withEngine } from "./fixtures.ts"

type ErrorClass = new (props: never) => Error

/** Every exported class whose instances are errors, as `Namespace.Name`. */
const exportedErrorClasses = (): ReadonlyMap<string, ErrorClass> => {
  const found = new Map<string, ErrorClass>()
  for (const [namespace, module] of Object.entries(EffectCluster)) {
    for (const [name, value] of Object.entries(module as Record<string, unknown>)) {
      if (typeof value !== "function") continue
      const prototype: unknown = (value as { prototype?: unknown }).prototype
      if (typeof prototype === "object" && prototype !== null && prototype instanceof Error) {
        found.set(`${namespace}.${name}`, value as ErrorClass)
      }
    }
  }
  return found
}

/** Identifying fields: their values must appear in what `Cause.pretty` prints. */
const IDENTIFYING = [
  "executionId",
  "payloadOf",
  "workflow",
  "activity",
  "signal",
  "existingWorkflow",
  "operation",
  "childExecutionId",
  "value",
  "source",
  "podId",
  "option",
  "address",
  "entityType",
  "entityId",
  "messageId"
]

const decodeDetail = 'Expected string, got 42\n  at ["amount"]'

/** Realistic constructor arguments of every exported error class, as the library raises them. */
const samples: Record<string, ReadonlyArray<Record<string, unknown>>> = {
  "WorkflowErrors.JournalError": [
    { operation: "write", transient: true, detail: "Connection terminated unexpectedly" },
    {
      operation: "get",
      transient: false,
      detail: 'the stored execution "order-1" in effect_cluster_executions does not decode'
    },
    {
      operation: 'write of execution "order-1"',
      transient: false,
      timeoutMillis: 5_000,
      detail: "it was cancelled on 4 attempts in a row"
    }
  ],
  "WorkflowErrors.SchemaVersionError": [
    { tablePrefix: "effect_cluster_", found: 5, needed: 12 },
    { tablePrefix: "efect_cluster_", found: null, needed: 12 },
    { tablePrefix: "effect_cluster_", found: 13, needed: 12 }
  ],
  "WorkflowErrors.InvalidRequestError": [
    { workflow: "ProcessPayment", path: '["cardNumber"]', detail: "Expected string, got null" }
  ],
  "WorkflowErrors.PayloadTooLargeError": [
    { payload: "request", payloadOf: "ProcessPayment", bytes: 52_428_829, limit: 1_048_576 },
    { payload: "signal", payloadOf: "approved", bytes: 2_000_017, limit: 1_048_576 }
  ],
  "WorkflowErrors.ActivityTimeoutError": [
    { activity: "upload", timeout: "heartbeat", millis: 30_000 },
    { activity: "charge-card", timeout: "start-to-close", millis: 5_000 }
  ],
  "WorkflowErrors.InvalidSignalError": [
    { signal: "approved", executionId: "order-7", path: '["by"]', detail: "Expected string, got 1" }
  ],
  "WorkflowErrors.UnknownWorkflowError": [
    { workflow: "ShipOrder", executionId: "ship@order-1" },
    { workflow: "ShipOrder", executionId: "" }
  ],
  "WorkflowErrors.ExecutionIdConflictError": [
    { executionId: "order-1", workflow: "ProcessPayment", existingWorkflow: "ShipOrder" }
  ],
  "WorkflowErrors.ExecutionNotFoundError": [{ executionId: "order-404" }],
  "WorkflowErrors.JournalDecodeError": [
    {
      executionId: "pay@order-1",
      workflow: "ProcessPayment",
      record: "activity",
      activity: "get-total",
      path: '["amount"]',
      detail: decodeDetail
    },
    {
      executionId: "pay@order-2",
      workflow: "ProcessPayment",
      record: "request",
      activity: null,
      path: '["orderId"]',
      detail: decodeDetail
    }
  ],
  "WorkflowErrors.ActivityResultError": [
    {
      executionId: "pay@order-1",
      workflow: "ProcessPayment",
      activity: "get-total",
      path: '["amount"]',
      detail: "Expected number, got NaN"
    }
  ],
  "WorkflowErrors.NonDeterminismError": [
    {
      executionId: "pay@order-1",
      workflow: "ProcessPayment",
      expected: '"reserve-stock" (recorded step 1)',
      actual: 'the new step "charge-card"'
    },
    {
      executionId: "pay@order-1",
      workflow: "ProcessPayment",
      expected: '"ship" (recorded step 3)',
      actual: "the workflow completed"
    }
  ],
  "WorkflowErrors.InvalidIdentifierError": [
    {
      kind: "execution id",
      value: '"order\\u00001"',
      workflow: "ProcessPayment",
      detail: "contains NUL (U+0000) at index 5"
    },
    {
      kind: "activity id",
      value: '"charge\\ud800"',
      workflow: "ProcessPayment",
      detail: "contains a lone surrogate (U+D800) at index 6"
    },
    { kind: "signal name", value: '""', workflow: null, detail: "is empty" }
  ],
  "WorkflowErrors.ChildCancelledError": [
    {
      executionId: "order@1",
      workflow: "ProcessPayment",
      childExecutionId: "ship@1",
      childWorkflow: "ShipOrder"
    }
  ],
  "ShardingErrors.StaleEpochError": [
    { executionId: "pay@order-1", shard: 17, epoch: 3, currentEpoch: 4 },
    { executionId: "pay@order-2", shard: 2, epoch: 1, currentEpoch: null }
  ],
  "ShardingErrors.ShardStoreError": [
    { operation: "renew", transient: true, detail: "Connection terminated unexpectedly" },
    {
      operation: "acquireManager",
      transient: true,
      busy: true,
      detail:
        "another process held a lock it needed past its bounded wait (canceling statement due to lock timeout)"
    },
    {
      operation: "pods",
      transient: false,
      detail: 'the stored pod "a" in effect_cluster_pods does not decode'
    }
  ],
  // Its message is written by the store that raises it (as `SqlEntityStore` does).
  "ShardingErrors.ShardCountMismatchError": [{ configured: 64, recorded: 300 }],
  "ShardingErrors.DuplicatePodError": [{ podId: "waiter-1", leaseUntil: 1_796_000_000_000 }],
  "ShardingErrors.InvalidShardingConfigError": [
    { option: "shardCount", value: "0", detail: "it must be an integer from 1 to 65536" }
  ],
  "PodNetwork.PeerUnreachableError": [
    { address: "10.0.0.7:7400", detail: "connect ECONNREFUSED 10.0.0.7:7400" },
    { address: "127.0.0.1:41234", detail: "no answer within 30000 ms" }
  ],
  "PodNetwork.NetworkConfigError": [
    {
      option: "host",
      detail:
        "listening on 0.0.0.0 beyond loopback needs a cluster secret or TLS, or any host could send this pod messages"
    }
  ],
  "AdminErrors.InvalidCursorError": [{ cursor: "c1.abc", detail: "its body is not base64url JSON" }],
  "AdminErrors.InvalidArgumentError": [
    { argument: "limit", value: "0", expected: "an integer from 1 to 1000" },
    { argument: "--since", value: "yesterday", expected: "an ISO date or a duration back from now" }
  ],
  "AdminErrors.InvalidSignalPayloadError": [
    { executionId: "order-7", signal: "approved", detail: "Unexpected token b in JSON at position 1" }
  ],
  "AdminErrors.StoreNotFoundError": [{ path: ".data/missing.db" }],
  "AdminErrors.InvalidStoreUrlError": [
    { url: "mysql://db/orders", detail: 'its scheme is "mysql", not postgres' }
  ],
  "AdminErrors.StoreUnavailableError": [
    { store: "postgres://ops:***@db:5432/orders", detail: "connect ECONNREFUSED 10.0.0.5:5432" }
  ],
  "AdminErrors.UnsupportedByStoreError": [
    { operation: "entities show", detail: "this store has no entity store (entities' messages and states)" }
  ],
  "AdminErrors.DeadLetterNotFoundError": [{ key: "Account/acc-1/d-2" }],
  "AdminErrors.NoStoreError": [{}],
  "EntityErrors.MalformedMessageError": [
    {
      entityType: "Wallet",
      entityId: "w-1",
      path: '["amount"]',
      detail: "Expected a number greater than 0, got -1"
    }
  ],
  "EntityErrors.MessageTooLargeError": [
    { entityType: "Wallet", entityId: "w-1", bytes: 300_000, limit: 262_144 }
  ],
  "EntityErrors.InvalidEntityIdError": [{ entityType: "Wallet", entityId: "" }],
  "EntityErrors.UnknownEntityTypeError": [{ entityType: "Wallet", entityId: "w-1" }],
  "EntityErrors.MessageTimeoutError": [
    { entityType: "Wallet", entityId: "w-1", messageId: "charge-7", timeoutMillis: 30_000 }
  ],
  "EntityErrors.MessageDeadLetteredError": [
    { entityType: "Wallet", entityId: "w-1", messageId: "charge-7", error: "Error: the bank is down" }
  ],
  "EntityErrors.EntityStateDecodeError": [
    { entityType: "Wallet", entityId: "w-1", path: '["balance"]', detail: "Missing key" }
  ],
  "EntityStore.EntityStoreError": [
    { operation: "complete", transient: true, detail: "Connection terminated unexpectedly" },
    { operation: "state", transient: false, detail: "the stored state row does not decode" }
  ],
  "WorkflowErrors.InvalidJournalExportError": [
    { source: "test/journals/payment-v1.json", path: '["version"]', detail: "Expected 1, got 2" },
    { source: "missing.json", path: "<file>", detail: "cannot read it: ENOENT" }
  ],
  "WorkflowErrors.ExecutionYielded": [
    {
      executionId: "pay@order-1",
      workflow: "ProcessPayment",
      detail: "waiting for a human to check the card"
    }
  ]
}

const construct = (errorClass: ErrorClass, props: Record<string, unknown>): Error =>
  new errorClass(props as never)

/** What `Cause.pretty` prints for a failure with `error`, checked for tag, data and message. */
const expectExplained = (name: string, error: Error, props: Record<string, unknown>) => {
  const tag = (error as unknown as { _tag: string })._tag
  const pretty = Cause.pretty(Cause.fail(error))
  const firstLine = pretty.split("\n")[0] ?? ""
  expect(firstLine.startsWith(`${tag}: `), `${name}: ${firstLine}`).toBe(true)
  expect(error.message.trim().length, `${name} has an empty message`).toBeGreaterThan(20)
  expect(pretty).toContain(error.message)
  for (const field of IDENTIFYING) {
    const value = props[field]
    if (typeof value === "string" && value !== "")
      expect(pretty, `${name} names its ${field}`).toContain(value)
  }
  if (typeof props.detail === "string") expect(pretty).toContain(props.detail)
  return pretty
}

describe("errors explain themselves", () => {
  const classes = exportedErrorClasses()

  it("the walk finds the package's error classes", () => {
    expect(classes.has("WorkflowErrors.ExecutionSuspendedError")).toBe(true)
    expect(classes.has("WorkflowErrors.JournalError")).toBe(true)
  })

  for (const [name, errorClass] of classes) {
    if (name === "WorkflowErrors.ExecutionSuspendedError") continue
    it(`${name}: Cause.pretty names its tag, what it concerns, and explains`, () => {
      const cases = samples[name]
      expect(cases, `add realistic samples of ${name} to this test`).toBeDefined()
      for (const props of cases ?? []) expectExplained(name, construct(errorClass, props), props)
    })
  }

  it("WorkflowErrors.ExecutionSuspendedError includes its reason's message, for every reason", () => {
    const reasons = WorkflowErrors.SuspendReason.members
    expect(reasons.length).toBeGreaterThan(0)
    for (const reasonClass of reasons) {
      const reasonName = `WorkflowErrors.${reasonClass.identifier}`
      const cases = samples[reasonName]
      expect(cases, `add realistic samples of ${reasonName} to this test`).toBeDefined()
      for (const props of cases ?? []) {
        const reason = construct(reasonClass as unknown as ErrorClass, props)
        const suspended = new WorkflowErrors.ExecutionSuspendedError({
          executionId: "pay@order-1",
          workflow: "ProcessPayment",
          reason: reason as WorkflowErrors.SuspendReason
        })
        const pretty = expectExplained("ExecutionSuspendedError", suspended, {
          executionId: "pay@order-1",
          workflow: "ProcessPayment"
        })
        expect(pretty).toContain(reason.message)
        expect(pretty).toContain(reasonClass.identifier)
      }
    }
  })

  it("an explicit message (a custom journal's, or one decoded from the journal) is kept as is", () => {
    const error = new WorkflowErrors.JournalError({
      operation: "get",
      message: "my store is down",
      transient: true
    })
    expect(error.message).toBe("my store is down")
    const decoded = Schema.decodeUnknownSync(WorkflowErrors.SuspendReason)({
      _tag: "NonDeterminismError",
      executionId: "x",
      workflow: "W",
      expected: "a",
      actual: "b",
      message: "as stored by an older version"
    })
    expect(decoded.message).toBe("as stored by an older version")
  })
})

class Task extends Workflow.TaggedRequest<Task>()("Task", {
  payload: { id: Schema.String },
  success: Schema.String,
  failure: Schema.Never
}) {}

const step = (id: string) => Effect.succeed(id).pipe(Activity.make(id, Schema.String, Schema.Never))
const block = Effect.never.pipe(Activity.make("block", Schema.Void, Schema.Never))

describe("errors explain themselves, end to end", () => {
  it.live(
    "send of an execution suspended by non-determinism prints the execution, expected and actual step",
    () =>
      Effect.gen(function* () {
        const journal = yield* MemoryJournal.make
        const version = (body: Effect.Effect<unknown, never, WorkflowContext.WorkflowContext>) =>
          Workflow.make(
            Task,
            (request) => `task@${request.id}`,
            () => Effect.as(body, "done")
          )
        // v1 records reserve-stock and charge-card, then blocks; v2 asks ship after reserve-stock.
        const v1 = step("reserve-stock").pipe(Effect.andThen(step("charge-card")), Effect.andThen(block))
        yield* withEngine(journal, version(v1), (engine) =>
          Effect.andThen(engine.sendDiscard(new Task({ id: "41" })), untilStep(journal, "task@41", "block"))
        )
        const exit = yield* Effect.exit(
          withEngine(journal, version(Effect.andThen(step("reserve-stock"), step("ship"))), (engine) =>
            engine.send(new Task({ id: "41" }))
          )
        )
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isSuccess(exit)) return
        const pretty = Cause.pretty(exit.cause)
        expect(pretty).toMatch(/^ExecutionSuspendedError: /)
        expect(pretty).toContain("task@41")
        expect(pretty).toContain('workflow "Task"')
        expect(pretty).toContain("NonDeterminismError")
        expect(pretty).toContain('expected "charge-card" (recorded step 2)')
        expect(pretty).toContain('it asked for the new step "ship"')
        expect(pretty).toContain('engine.resume("task@41")')
      })
  )
})
