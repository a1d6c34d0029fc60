/**
 * The verification runner's fault schedule (issue #20): a seeded, reproducible list of faults, so
 * that a failing run prints its seed and `npm run verify -- --seed S` replays the same schedule.
 */

/** A fault the nemesis injects into one pod. */
export type FaultKind =
  /** SIGKILL, then a new process after `millis`. */
  | "kill"
  /** SIGSTOP for `millis` (past the lease when longer than its TTL), then SIGCONT. */
  | "pause"
  /** SIGTERM (a graceful stop, as in a rolling deploy), then a new process after `millis`. */
  | "restart"
  /** PostgreSQL only: `pg_terminate_backend` of every session of the pods (`pod` is ignored). */
  | "terminate"
  /** PostgreSQL only: the server stopped (`pg_ctl stop -m fast`) and started after `millis`. */
  | "db-restart"
  /** The path from the other pods to this one stops forwarding for `millis` (a hung connection). */
  | "net-hang"
  /** Every connection from the other pods to this one is reset (RST). */
  | "net-reset"
  /** The path from the other pods to this one delays every chunk `delayMillis`, for `millis`. */
  | "net-slow"
  /** PostgreSQL only: the path from this pod to the server stops forwarding for `millis`. */
  | "store-hang"
  /**
   * PostgreSQL only: the path from this pod to the server hangs for `millis`, and the server ends
   * the pod's liveness session meanwhile (the pod cannot hear of it).
   */
  | "store-cut"
  /** PostgreSQL only: every connection of this pod to the server is reset (RST). */
  | "store-reset"
  /** PostgreSQL only: the path from this pod to the server delays every chunk `delayMillis`, for `millis`. */
  | "store-slow"
  /** SQLite only: the disk holding the store is full for `millis` (every pod's writes fail). */
  | "disk-full"
  /** SIGTERM, then a new process whose clock is off by `offsetMillis` (until its next restart). */
  | "skew"
  /**
   * The hostile sender (`hostile.ts`) attacks every pod: garbage, oversized and malformed frames,
   * a hang, a flood of connections, malformed pushes, rows that do not decode (`pod` is ignored).
   * Long runs only: one every 90–150 s, from 30 s on.
   */
  | "hostile"

export interface Fault {
  /** When it begins, in ms from the start of the run. */
  readonly at: number
  readonly kind: FaultKind
  /** The pod's index. */
  readonly pod: number
  /** How long the pod stays down or frozen. */
  readonly millis: number
  /** `skew`: how far the pod's clock is off (negative: behind), at most half the lease TTL. */
  readonly offsetMillis?: number
  /** `net-slow`, `store-slow`: how long each chunk is held, each way. */
  readonly delayMillis?: number
}

/** The faults of one pod, on every backend. */
export const POD_FAULTS: ReadonlyArray<FaultKind> = [
  "kill",
  "pause",
  "restart",
  "net-hang",
  "net-reset",
  "net-slow",
  "skew"
]

/** Every fault a SQLite profile draws from. */
export const SQLITE_FAULTS: ReadonlyArray<FaultKind> = [...POD_FAULTS, "disk-full"]

/** Every fault a PostgreSQL profile draws from. */
export const POSTGRES_FAULTS: ReadonlyArray<FaultKind> = [
  ...POD_FAULTS,
  "terminate",
  "db-restart",
  "store-hang",
  "store-cut",
  "store-reset",
  "store-slow"
]

/**
 * Faults of the store, and the hostile sender: every pod has them, so no other fault overlaps them
 * (the hostile sender judges how each pod answers: none may be down or cut off meanwhile).
 */
const STORE_WIDE: ReadonlySet<FaultKind> = new Set(["terminate", "db-restart", "disk-full", "hostile"])

/** The first hostile attack of a long run, and the gap between two. */
const HOSTILE_FROM = 30_000
const HOSTILE_GAP = [90_000, 150_000] as const

/** Whether `kind` is a fault of the whole store, or the hostile sender (no other fault overlaps it). */
export const isStoreWide = (kind: FaultKind): boolean => STORE_WIDE.has(kind)

/** mulberry32: a small, fast, seeded generator of numbers in [0, 1). */
export const random = (seed: number): (() => number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * The faults of a run of `durationMillis` over `pods` pods whose lease lasts `leaseMillis`: one
 * every 2–5 s after a first quiet second, never two at once on one pod, pauses of 0.5–2 leases,
 * kills and restarts of 0.2–2 s. The same arguments always give the same schedule.
 */
export const schedule = (
  seed: number,
  options: {
    readonly durationMillis: number
    readonly pods: number
    readonly leaseMillis: number
    /** The kinds to draw from (default: the pod faults, which every backend supports). */
    readonly kinds?: ReadonlyArray<FaultKind> | undefined
    /** Include the hostile sender, one attack every 90–150 s from 30 s on (default: no). */
    readonly hostile?: boolean | undefined
  }
): ReadonlyArray<Fault> => {
  const next = random(seed)
  const between = (low: number, high: number) => low + Math.floor(next() * (high - low))
  const faults: Array<Fault> = []
  const busyUntil = new Array<number>(options.pods).fill(0)
  const kinds: ReadonlyArray<FaultKind> = options.kinds ?? POD_FAULTS
  let hostileAt = options.hostile === true ? HOSTILE_FROM : Number.POSITIVE_INFINITY
  for (let at = 1_000 + between(0, 1_000); at < options.durationMillis; at += between(2_000, 5_000)) {
    if (at >= hostileAt) {
      // Due: no new fault until those under way healed. Its length is the attack's own; the
      // runner lets no other fault start until it ended.
      if (busyUntil.some((until) => until > at)) continue
      faults.push({ at, kind: "hostile", pod: 0, millis: 0 })
      hostileAt = at + between(HOSTILE_GAP[0], HOSTILE_GAP[1])
      busyUntil.fill(at + 1_000)
      continue
    }
    const pod = between(0, options.pods)
    if (busyUntil[pod]! > at) continue
    const kind = kinds[between(0, kinds.length)]!
    const millis =
      kind === "pause" ||
      kind === "net-hang" ||
      kind === "store-hang" ||
      kind === "store-cut" ||
      kind === "net-slow" ||
      kind === "store-slow" ||
      kind === "disk-full"
        ? between(Math.round(options.leaseMillis / 2), options.leaseMillis * 2)
        : kind === "terminate" || kind === "skew" || kind === "net-reset" || kind === "store-reset"
          ? 0
          : between(200, 2_000)
    if (kind === "skew") {
      // Off by a quarter to a half of the TTL, ahead or behind.
      const offset = between(Math.round(options.leaseMillis / 4), Math.round(options.leaseMillis / 2))
      faults.push({ at, kind, pod, millis, offsetMillis: next() < 0.5 ? -offset : offset })
    } else if (kind === "net-slow" || kind === "store-slow") {
      faults.push({ at, kind, pod, millis, delayMillis: between(50, 400) })
    } else faults.push({ at, kind, pod, millis })
    // A fault of the store touches every pod.
    if (STORE_WIDE.has(kind)) busyUntil.fill(at + millis + 1_000)
    else busyUntil[pod] = at + millis + 1_000
  }
  return faults
}

/** `12.3 s pause pod 1 for 4,200 ms` */
export const describeFault = (fault: Fault): string =>
  fault.kind === "net-slow" || fault.kind === "store-slow"
    ? `${(fault.at / 1000).toFixed(1)} s ${fault.kind} pod ${fault.pod}: ${fault.delayMillis} ms each way for ${fault.millis.toLocaleString("en-US")} ms`
    : fault.kind === "net-reset" || fault.kind === "store-reset"
      ? `${(fault.at / 1000).toFixed(1)} s ${fault.kind} pod ${fault.pod}`
      : fault.kind === "disk-full"
        ? `${(fault.at / 1000).toFixed(1)} s disk full for ${fault.millis.toLocaleString("en-US")} ms`
        : fault.kind === "skew"
          ? `${(fault.at / 1000).toFixed(1)} s restart pod ${fault.pod} with its clock ${fault.offsetMillis! > 0 ? "ahead" : "behind"} by ${Math.abs(fault.offsetMillis!).toLocaleString("en-US")} ms`
          : fault.kind === "hostile"
            ? `${(fault.at / 1000).toFixed(1)} s the hostile sender attacks every pod`
            : fault.kind === "terminate"
              ? `${(fault.at / 1000).toFixed(1)} s terminate every pod's PostgreSQL sessions`
              : fault.kind === "db-restart"
                ? `${(fault.at / 1000).toFixed(1)} s PostgreSQL stopped for ${fault.millis.toLocaleString("en-US")} ms`
                : `${(fault.at / 1000).toFixed(1)} s ${fault.kind} pod ${fault.pod} for ${fault.millis.toLocaleString("en-US")} ms`
