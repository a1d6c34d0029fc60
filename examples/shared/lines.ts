/**
 * For the demos' supervisors: the JSON lines a child process prints, kept, so that a wait for a
 * line ("north has sent 500") also sees one that came before the wait began. The supervisor does
 * other things between its waits (it restarts a pod, which takes a moment); a waiter that only saw
 * later lines missed a line printed meanwhile, and the demo hung.
 */

/** The lines of one child. */
export interface Lines<L> {
  /** Records a line the child printed. */
  readonly push: (line: L) => void
  /** The child exited: waits that are still open fail with `reason`. */
  readonly close: (reason: Error) => void
  /** The first line so far, or to come, for which `test` holds. */
  readonly reached: (test: (line: L) => boolean) => Promise<L>
  /** The first line from now on for which `test` holds (an answer to what was just asked). */
  readonly next: (test: (line: L) => boolean) => Promise<L>
}

export const make = <L>(): Lines<L> => {
  const seen: Array<L> = []
  const waiting: Array<{
    readonly test: (line: L) => boolean
    readonly done: (line: L) => void
    readonly fail: (reason: Error) => void
  }> = []
  let closed: Error | undefined
  const next = (test: (line: L) => boolean) =>
    new Promise<L>((done, fail) => {
      if (closed !== undefined) return fail(closed)
      waiting.push({ test, done, fail })
    })
  return {
    push: (line) => {
      seen.push(line)
      for (const waiter of waiting.filter((w) => w.test(line))) {
        waiting.splice(waiting.indexOf(waiter), 1)
        waiter.done(line)
      }
    },
    close: (reason) => {
      closed = reason
      for (const waiter of waiting.splice(0)) waiter.fail(reason)
    },
    reached: (test) => {
      const earlier = seen.find(test)
      return earlier === undefined ? next(test) : Promise.resolve(earlier)
    },
    next
  }
}
