/**
 * The fault schedule of the verification runner (`verify/schedule.ts`): seeded and reproducible,
 * never two faults at once on one pod, and the hostile sender of long runs on its own.
 */
import { describe, expect, it } from "vitest"
import { isStoreWide, POSTGRES_FAULTS, schedule } from "../../verify/schedule.ts"

const LEASE = 3_000

describe("verify/schedule.ts", () => {
  it("the same seed gives the same schedule; another seed another", () => {
    const options = { durationMillis: 120_000, pods: 3, leaseMillis: LEASE, kinds: POSTGRES_FAULTS }
    expect(schedule(5, options)).toEqual(schedule(5, options))
    expect(schedule(6, options)).not.toEqual(schedule(5, options))
  })

  it("long runs have the hostile sender every 90–150 s from 30 s on, with no other fault under way", () => {
    const durationMillis = 10 * 60_000
    const options = { durationMillis, pods: 3, leaseMillis: LEASE, kinds: POSTGRES_FAULTS }
    const without = schedule(2027, options)
    expect(without.some((fault) => fault.kind === "hostile")).toBe(false)
    const faults = schedule(2027, { ...options, hostile: true })
    const attacks = faults.filter((fault) => fault.kind === "hostile")
    expect(attacks.length).toBeGreaterThanOrEqual(4)
    expect(attacks[0]!.at).toBeGreaterThanOrEqual(30_000)
    for (let i = 1; i < attacks.length; i++) {
      expect(attacks[i]!.at - attacks[i - 1]!.at).toBeGreaterThanOrEqual(90_000)
    }
    expect(isStoreWide("hostile")).toBe(true)
    // No fault of a pod is still under way when an attack begins (the runner also waits for them).
    for (const attack of attacks) {
      const before = faults.filter((fault) => fault.at < attack.at && fault.kind !== "hostile")
      for (const fault of before) expect(fault.at + fault.millis).toBeLessThanOrEqual(attack.at)
    }
    // The other faults are still there, of every kind.
    expect(new Set(faults.map((fault) => fault.kind)).size).toBeGreaterThanOrEqual(POSTGRES_FAULTS.length)
  })
})
