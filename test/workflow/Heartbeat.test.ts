/**
 * Activity heartbeats and timeouts: a hung attempt (no heartbeat, or too long) fails with
 * ActivityTimeoutError and is retried per policy; the next attempt sees the last heartbeat.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Option, Schema } from "effect"
import { Activity, MemoryJournal, Workflow } from "../../src/index.ts"
import { withEngine } from "./fixtures.ts"

class Upload extends Workflow.TaggedRequest<Upload>()("Upload", {
  payload: { id: Schema.String },
  success: Schema.Number,
  failure: Schema.Never
}) {}

const Progress = Schema.Struct({ uploaded: Schema.Number })

describe("Activity heartbeats and timeouts", () => {
  it.live("a stalled attempt times out on its heartbeat; the retry resumes from the last details", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const starts: Array<number> = []
      const workflow = Workflow.make(
        Upload,
        (r) => `upload@${r.id}`,
        () =>
          Effect.gen(function* () {
            const from = Option.match(yield* Activity.lastHeartbeat(Progress), {
              onNone: () => 0,
              onSome: (p) => p.uploaded
            })
            starts.push(from)
            for (let chunk = from; chunk < 10; chunk++) {
              // The first attempt stalls after chunk 4 (a hung connection).
              if ((yield* Activity.attempt) === 1 && chunk === 5) yield* Effect.never
              yield* Activity.heartbeat({ uploaded: chunk + 1 })
              yield* Effect.sleep("5 millis")
            }
            return 10
          }).pipe(
            Activity.make("upload", Schema.Number, Schema.Never, {
              heartbeatTimeout: "150 millis",
              retry: { initialDelay: "1 millis" }
            })
          )
      )
      const result = yield* withEngine(journal, workflow, (e) => e.send(new Upload({ id: "1" })))
      expect(result).toBe(10)
      expect(starts).toEqual([0, 5])
      const [upload] = yield* journal.steps("upload@1")
      expect(upload).toMatchObject({ attempt: 2 })
    })
  )

  it.live("startToCloseTimeout fails a slow attempt; when retries run out the timeout is recorded", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      let attempts = 0
      const workflow = Workflow.make(
        Upload,
        (r) => `slow@${r.id}`,
        () =>
          Effect.suspend(() => {
            attempts++
            return Effect.as(Effect.sleep("1 second"), 1)
          }).pipe(
            Activity.make("slow", Schema.Number, Schema.Never, {
              startToCloseTimeout: "50 millis",
              retry: { maxAttempts: 2, initialDelay: "1 millis" }
            })
          )
      )
      const exit = yield* withEngine(journal, workflow, (e) => Effect.exit(e.send(new Upload({ id: "1" }))))
      expect(attempts).toBe(2)
      expect(Exit.isFailure(exit)).toBe(true)
      expect(String(exit)).toContain("ActivityTimeoutError")
      const [slow] = yield* journal.steps("slow@1")
      expect(slow?.outcome).toContain("ActivityTimeoutError")
      expect(slow?.outcome).toContain("ran longer than its startToCloseTimeout of 50 ms")
    })
  )
})
