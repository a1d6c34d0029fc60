/**
 * The pass: the counter where plates wait to be carried to the table, shared by every waiter — a
 * folder with one file per plate served. It is the restaurant's external system, idempotent the
 * way every activity's side effect must be: a plate is keyed by the serve step's persistence id
 * (the same on every attempt), so an attempt that runs again — its waiter died after carrying the
 * plate but before the journal recorded it — finds the plate already served and carries nothing.
 */
import { linkSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"

/** Who carried a plate: the attempt of the serve step that served it. */
export interface Plate {
  readonly order: string
  readonly waiter: string
  readonly table: number
  readonly epoch: number
  readonly attempt: number
}

const fileOf = (pass: string, key: string) => join(pass, `${encodeURIComponent(key)}.json`)

/**
 * Serves `plate` under `key` unless a plate with that key was served already; returns the plate
 * at the table and whether this call carried it.
 */
export const serveOnce = (pass: string, key: string, plate: Plate): { plate: Plate; carried: boolean } => {
  mkdirSync(pass, { recursive: true })
  const file = fileOf(pass, key)
  // Written aside, then linked into place: the link fails if the plate exists (atomically, whichever
  // process gets there first), and a plate is never seen half written.
  const draft = `${file}.${process.pid}.draft`
  writeFileSync(draft, JSON.stringify(plate))
  try {
    linkSync(draft, file)
    return { plate, carried: true }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
    return { plate: JSON.parse(readFileSync(file, "utf8")) as Plate, carried: false }
  } finally {
    rmSync(draft, { force: true })
  }
}

/** Every plate served so far. */
export const plates = (pass: string): ReadonlyArray<Plate> =>
  readdirSync(pass)
    .filter((name) => name.endsWith(".json"))
    .map((name) => JSON.parse(readFileSync(join(pass, name), "utf8")) as Plate)
